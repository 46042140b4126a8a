// birdwatch.js: a client of the fanout's WebSocket protocol (docs/protocol.md) that any
// page can import. One connection carries several live searches; each gets its history,
// its live tweets, the tweets it missed while disconnected or during a gap (resume), and
// deletions. Live and resumed tweets reach a search once (a bounded memory of ids).
//
//   import { Birdwatch } from "./birdwatch.js";
//   const bw = new Birdwatch({ onStatus: (s) => …, onStats: (m) => … });
//   const search = bw.search("#music OR concert", {
//     onSubscribed: (canonical) => …, onTweets: (tweets, how) => …,   // how: live | history | resumed
//     onError: (error) => …, onDelete: (id) => … });
//   search.loadEarlier(olderThanId);   search.close();

const MAX_SEEN_IDS = 20000;        // per search: ids remembered to drop repeats
const HISTORY_PAGE = 20;
const BACKOFF_FIRST_MS = 500, BACKOFF_MAX_MS = 30000;
// Replies to a subscribe that are errors (the others belong to other requests).
const SUBSCRIBE_ERRORS = new Set(["bad_query", "too_many_subscriptions"]);

const defaultUrl = () => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";

export class Search {
  constructor(client, query, handlers) {
    this.client = client;
    this.query = query;          // as typed; the canonical text once subscribed
    this.qid = null;
    this.closed = false;
    this.newest = 0n;            // newest tweet id this search has shown
    this.handlers = handlers;
    this.seen = new Set();
  }

  // An earlier page from the store, before `beforeId` (default: where live delivery began).
  loadEarlier(beforeId = null, size = HISTORY_PAGE) {
    if (!this.qid) return;
    this.client.send({ type: "history", qid: this.qid, size, ...(beforeId ? { before: beforeId } : {}) });
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.client.forget(this);
  }

  take(tweets, how) {
    const fresh = [];
    for (const tweet of tweets) {
      const id = BigInt(tweet.id);
      if (id > this.newest) this.newest = id;
      // A history page is asked for explicitly (again, after the page dropped it): always shown.
      if (how !== "history") {
        if (this.seen.has(tweet.id)) continue;
        this.seen.add(tweet.id);
        if (this.seen.size > MAX_SEEN_IDS) this.seen.delete(this.seen.values().next().value);
      }
      fresh.push(tweet);
    }
    if (fresh.length) this.handlers.onTweets?.(fresh, how);
  }
}

export class Birdwatch {
  constructor({ url = defaultUrl(), onStatus = () => {}, onStats = () => {} } = {}) {
    this.url = url;
    this.onStatus = onStatus;
    this.onStats = onStats;
    this.searches = [];          // in the order they were asked for
    this.byQid = new Map();      // qid -> Set of searches (two may ask for the same query)
    this.pending = [];           // searches whose subscribe awaits its reply, in order
    this.failures = 0;
    this.connect();
  }

  search(query, handlers = {}) {
    const search = new Search(this, query, handlers);
    this.searches.push(search);
    this.subscribe(search);
    return search;
  }

  send(message) {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  subscribe(search) {
    if (this.send({ type: "subscribe", query: search.query })) this.pending.push(search);
  }

  forget(search) {
    this.searches = this.searches.filter((s) => s !== search);
    const sharing = this.byQid.get(search.qid);
    if (!sharing) return;
    sharing.delete(search);
    if (sharing.size === 0) {
      this.byQid.delete(search.qid);
      this.send({ type: "unsubscribe", qid: search.qid });
    }
  }

  connect() {
    this.onStatus({ state: "connecting" });
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.failures = 0;
      this.pending = [];
      this.byQid.clear();
      this.onStatus({ state: "connected" });
      for (const search of this.searches) this.subscribe(search);  // resumed where each stood
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      // Full jitter: replicas that restart are not met by every client at the same instant.
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.failures++);
      const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
      this.onStatus({ state: "disconnected", retryMs: delay });
      setTimeout(() => this.connect(), delay);
    };
    // A frame carries one or more messages, one per line.
    socket.onmessage = (event) => {
      for (const line of String(event.data).split("\n")) {
        let message;
        try { message = JSON.parse(line); } catch { continue; }
        this.receive(message);
      }
    };
  }

  each(qid, visit) {
    for (const search of this.byQid.get(qid) ?? []) visit(search);
  }

  receive(m) {
    switch (m.type) {
      case "tweet":
        for (const qid of m.qids) this.each(qid, (s) => s.take([m.tweet], "live"));
        break;
      case "subscribed": {
        const search = this.pending.shift();
        if (!search) break;
        if (search.closed) {  // closed while its subscribe was in flight
          if (!this.byQid.has(m.qid)) this.send({ type: "unsubscribe", qid: m.qid });
          break;
        }
        search.qid = m.qid;
        search.query = m.query;
        if (!this.byQid.has(m.qid)) this.byQid.set(m.qid, new Set());
        this.byQid.get(m.qid).add(search);
        search.handlers.onSubscribed?.(m.query);
        // Back after a reconnect: everything after the newest tweet shown; new: its history.
        if (search.newest > 0n) this.send({ type: "resume", qid: m.qid, since_id: search.newest.toString() });
        else search.loadEarlier();
        break;
      }
      case "history":
        this.each(m.qid, (s) => {
          s.take(m.tweets, "history");
          s.handlers.onHistoryEnd?.(m.next_before);
        });
        break;
      case "resumed":
        this.each(m.qid, (s) => s.take(m.tweets, "resumed"));
        if (m.next_since)
          this.send({ type: "resume", qid: m.qid, since_id: m.next_since, ...(m.before_id ? { before_id: m.before_id } : {}) });
        break;
      case "gap":  // tweets between the two ids may have been missed: fetch them from the store
        for (const qid of this.byQid.keys())
          this.send({ type: "resume", qid, since_id: m.after_id, before_id: m.before_id });
        break;
      case "delete":
        for (const search of this.searches) search.handlers.onDelete?.(m.id);
        break;
      case "stats":
        this.onStats(m);
        break;
      case "error":
        if (SUBSCRIBE_ERRORS.has(m.code) || (m.code === "bad_message" && m.field === "query")) {
          const search = this.pending.shift();
          if (!search) break;
          this.searches = this.searches.filter((s) => s !== search);
          search.closed = true;
          search.handlers.onError?.(m);
        } else {
          this.onStatus({ state: "error", error: m });
        }
        break;
    }
  }
}
