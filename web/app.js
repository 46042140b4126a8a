// The birdwatch page: several live searches side by side, each with its tweets (sortable,
// capped), a tweets-per-minute chart and a word cloud; the searches live in the URL.
import { Birdwatch } from "./birdwatch.js";

const KEEP = 200;            // tweets a column holds; older ones come back with "load earlier"
const KEEP_MAX = 1000;       // how far "load earlier" may grow a column
const SHOWN = 60;            // tweets in the DOM per column, until "load earlier" asks for more
const PAUSE_BUFFER = 1000;   // live tweets held while a column is paused (the newest)
const CHART_MINUTES = 30;
const CLOUD_WORDS = 30;
const DEFAULT_QUERIES = ["the OR hoy OR #music"];
const STOP_WORDS = new Set(("a an and are as at be but by de del der die das el en es et for from has have he her his " +
  "i if in is it its la las le les los me my no not of on or our que rt se she so that the their them they this " +
  "to un una und was we were what when who will with you your").split(" "));

const $ = (selector, root = document) => root.querySelector(selector);
const element = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};
// Tweet ids are decimal strings of up to 19 digits: longer is larger, else compare as text.
const newerFirst = (a, b) => b.length - a.length || (b > a ? 1 : b < a ? -1 : 0);
const compact = (n) => (n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? Math.round(n / 1e3) + "k" : String(n));

function relativeTime(ms) {
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (seconds < 60) return seconds + "s";
  if (seconds < 3600) return Math.floor(seconds / 60) + "m";
  if (seconds < 86400) return Math.floor(seconds / 3600) + "h";
  return new Date(ms).toLocaleDateString();
}

// Links only for http(s) URLs, hashtags (a new search here) and mentions; everything else
// is text nodes, so nothing in a tweet is ever markup. Mentions are X usernames, or
// Bluesky handles (domain names) in a Bluesky post.
const NETWORKS = {
  x: { token: /(https?:\/\/[^\s<>"]+)|(#[\p{L}\p{N}_]+)|(@\w{1,15})/gu, profile: "https://x.com/" },
  bluesky: { token: /(https?:\/\/[^\s<>"]+)|(#[\p{L}\p{N}_]+)|(@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+)/gu,
             profile: "https://bsky.app/profile/" },
};
const networkOf = (tweet) => String(tweet.url || "").startsWith("https://bsky.app/") ? NETWORKS.bluesky : NETWORKS.x;

function richText(text, network) {
  const fragment = document.createDocumentFragment();
  let at = 0;
  for (const m of text.matchAll(network.token)) {
    fragment.append(text.slice(at, m.index));
    const link = element("a", "", m[0]);
    if (m[1]) {
      link.href = m[1];
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
    } else if (m[2]) {
      link.href = "?q=" + encodeURIComponent(m[2]);
      link.className = "tag";
      link.dataset.query = m[2];
    } else {
      link.href = network.profile + m[3].slice(1);
      link.className = "mention";
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
    }
    fragment.append(link);
    at = m.index + m[0].length;
  }
  fragment.append(text.slice(at));
  return fragment;
}

// Drawn here from the handle: no request leaves for a third-party image host.
function avatar(user) {
  const box = element("span", "avatar", (user.name || user.screen_name || "?").trim().charAt(0).toUpperCase());
  let hash = 0;
  for (const c of user.screen_name || "") hash = (hash * 31 + c.charCodeAt(0)) | 0;
  box.style.backgroundColor = `hsl(${Math.abs(hash) % 360} 55% 45%)`;
  return box;
}

const isWebUrl = (url) => typeof url === "string" && /^https?:\/\//i.test(url);

function tweetUrl(tweet) {
  return isWebUrl(tweet.url) ? tweet.url : `https://x.com/${encodeURIComponent(tweet.user.screen_name)}/status/${tweet.id}`;
}

function renderTweet(tweet) {
  const item = element("li", "tweet");
  item.dataset.id = tweet.id;
  item.dataset.retweets = tweet.retweet_count ?? -1;
  if (tweet.retweet_of_user) item.append(element("div", "retweeted", "↻ " + (tweet.user.name || tweet.user.screen_name) + " retweeted"));
  const head = element("div", "head");
  const author = tweet.retweet_of_user ? { screen_name: tweet.retweet_of_user, name: "" } : tweet.user;
  // A Bluesky author whose handle is not known here is shown by DID alone (docs/protocol.md).
  const byDid = author.screen_name.startsWith("did:");
  const name = element("span", "name", author.name || (byDid ? "" : author.screen_name));
  const handle = element("span", "handle", (byDid ? "" : "@") + author.screen_name);
  const when = element("a", "when", relativeTime(tweet.timestamp_ms));
  when.href = tweetUrl(tweet);
  when.rel = "noopener noreferrer nofollow";
  when.target = "_blank";
  when.dataset.ts = tweet.timestamp_ms;
  when.title = new Date(tweet.timestamp_ms).toLocaleString();
  head.append(avatar(author), name, handle, when);
  const text = element("p", "text");
  const network = networkOf(tweet);
  text.append(richText(tweet.text, network));
  item.append(head, text);
  if (tweet.quoted) {
    const quoted = element("blockquote", "quoted");
    const who = tweet.quoted.user.screen_name;
    quoted.append(element("span", "handle", (who.startsWith("did:") ? "" : "@") + who), " ");
    if (tweet.quoted.text) {
      quoted.append(richText(tweet.quoted.text, network));
    } else if (isWebUrl(tweet.quoted.url)) {  // a Bluesky post this ingest has not seen: a link to it
      const link = element("a", "", "quoted post");
      link.href = tweet.quoted.url;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      quoted.append(link);
    }
    item.append(quoted);
  }
  const counts = [];
  if (tweet.retweet_count != null) counts.push("↻ " + compact(tweet.retweet_count));
  if (tweet.like_count != null) counts.push("♥ " + compact(tweet.like_count));
  if (tweet.user.followers_count) counts.push(compact(tweet.user.followers_count) + " followers");
  if (counts.length) item.append(element("div", "counts", counts.join("   ")));
  return item;
}

const SORTS = {
  time: (a, b) => newerFirst(a.id, b.id),
  retweets: (a, b) => (b.retweet_count ?? -1) - (a.retweet_count ?? -1),
  likes: (a, b) => (b.like_count ?? -1) - (a.like_count ?? -1),
  followers: (a, b) => b.user.followers_count - a.user.followers_count,
};

class Column {
  constructor(page, query) {
    this.page = page;
    this.node = $("#column-template").content.firstElementChild.cloneNode(true);
    this.list = $(".tweets", this.node);
    this.input = $(".query", this.node);
    this.error = $(".query-error", this.node);
    this.tweets = new Map();       // id -> tweet, the column's KEEP newest (by id)
    this.elements = new Map();     // id -> its <li>, for the tweets shown
    this.limit = KEEP;
    this.shown = SHOWN;
    this.held = [];                // live tweets that arrived while paused
    this.paused = false;
    this.received = 0;
    this.minutes = new Map();      // minute -> tweets created then
    this.sort = "time";
    this.input.value = query;
    $(".edit", this.node).onsubmit = (event) => { event.preventDefault(); this.change(this.input.value); };
    $(".remove", this.node).onclick = () => page.remove(this);
    $(".sort", this.node).onchange = (event) => { this.sort = event.target.value; this.dirty(); };
    $(".pause", this.node).onclick = (event) => this.pause(event.target);
    $(".earlier", this.node).onclick = () => this.earlier();
    this.search = this.open(query, () => {});
  }

  open(query, onReady) {
    const search = this.page.client.search(query, {
      onSubscribed: (canonical) => { this.input.value = canonical; this.error.textContent = ""; onReady(search); this.page.saveUrl(); },
      onError: (error) => { this.error.textContent = error.message; },
      onTweets: (tweets, how) => { if (search === this.search) this.add(tweets, how); },
      onHistoryEnd: (nextBefore) => { if (search === this.search) $(".earlier", this.node).hidden = !nextBefore; },
      onDelete: (id) => this.remove(id),
    });
    return search;
  }

  // A new query replaces this column's only once the server accepted it.
  change(query) {
    const next = this.open(query, (accepted) => {
      this.search.close();
      this.search = accepted;
      this.tweets.clear();
      this.held = [];
      this.minutes.clear();
      this.received = 0;
      this.limit = KEEP;
      this.shown = SHOWN;
      this.dirty();
    });
    return next;
  }

  add(tweets, how) {
    if (this.paused && how === "live") {
      this.held.push(...tweets);
      if (this.held.length > PAUSE_BUFFER) this.held.splice(0, this.held.length - PAUSE_BUFFER);
      this.received += tweets.length;
      this.updateCount();
      return;
    }
    for (const tweet of tweets) {
      if (!this.tweets.has(tweet.id)) this.received += how === "history" ? 0 : 1;
      this.tweets.set(tweet.id, tweet);
      const minute = Math.floor(tweet.timestamp_ms / 60000);
      this.minutes.set(minute, (this.minutes.get(minute) || 0) + 1);
    }
    this.trim();
    this.dirty();
  }

  // The newest `limit` tweets stay; the older ones leave memory and the DOM (in steps, so
  // that a fast stream does not sort the column for every tweet).
  trim() {
    if (this.tweets.size <= this.limit + 50) return;
    const ids = [...this.tweets.keys()].sort(newerFirst);
    for (const id of ids.slice(this.limit)) this.tweets.delete(id);
    $(".earlier", this.node).hidden = false;  // what left can come back from the store
    const oldestMinute = Math.floor(Date.now() / 60000) - CHART_MINUTES;
    for (const minute of this.minutes.keys()) if (minute < oldestMinute) this.minutes.delete(minute);
  }

  // 50 more below: from memory while it holds them, then from the store.
  earlier() {
    this.shown = Math.min(KEEP_MAX, this.shown + 50);
    this.limit = Math.max(this.limit, this.shown);
    if (this.tweets.size >= this.shown) return this.dirty();
    let oldest = null;
    for (const id of this.tweets.keys()) if (oldest === null || newerFirst(id, oldest) > 0) oldest = id;
    this.search.loadEarlier(oldest, 50);
  }

  remove(id) {
    if (this.tweets.delete(id)) this.dirty();
    this.held = this.held.filter((t) => t.id !== id);
  }

  pause(button) {
    this.paused = !this.paused;
    button.textContent = this.paused ? "Resume" : "Pause";
    button.setAttribute("aria-pressed", String(this.paused));
    if (!this.paused) {
      const held = this.held;
      this.held = [];
      this.received -= held.length;
      this.add(held, "live");
    }
  }

  dirty() { this.page.schedule(this); }

  updateCount() { $(".count", this.node).textContent = compact(this.received); }

  render() {
    this.updateCount();
    const shown = [...this.tweets.values()].sort(SORTS[this.sort]).slice(0, this.shown);
    const elements = new Map();
    for (const tweet of shown) elements.set(tweet.id, this.elements.get(tweet.id) || renderTweet(tweet));
    this.elements = elements;
    this.list.replaceChildren(...elements.values());
  }

  renderAnalytics() {
    // Tweets per minute over the last half hour, as bars.
    const now = Math.floor(Date.now() / 60000);
    const counts = [];
    for (let m = now - CHART_MINUTES + 1; m <= now; ++m) counts.push(this.minutes.get(m) || 0);
    const top = Math.max(1, ...counts);
    const chart = $(".chart", this.node);
    const bars = counts.map((n, i) => {
      const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      const width = 300 / CHART_MINUTES;
      bar.setAttribute("x", String(i * width + 1));
      bar.setAttribute("width", String(width - 2));
      bar.setAttribute("height", String((n / top) * 58));
      bar.setAttribute("y", String(60 - (n / top) * 58));
      const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = `${n} tweets, ${CHART_MINUTES - 1 - i} min ago`;
      bar.append(title);
      return bar;
    });
    chart.replaceChildren(...bars);

    // The most frequent words of the tweets held, sized by count; a click searches it.
    const words = new Map();
    for (const tweet of this.tweets.values())
      for (const word of tweet.text.toLowerCase().replace(/https?:\/\/\S+/g, "").match(/[\p{L}\p{N}#@_]{3,}/gu) || [])
        if (!STOP_WORDS.has(word)) words.set(word, (words.get(word) || 0) + 1);
    const ranked = [...words].sort((a, b) => b[1] - a[1]).slice(0, CLOUD_WORDS);
    const most = ranked.length ? ranked[0][1] : 1;
    const cloud = ranked.sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([word, n]) => {
      const link = element("a", "word", word);
      link.href = "?q=" + encodeURIComponent(word);
      link.dataset.query = word;
      link.title = n + " tweets";
      link.style.fontSize = (0.75 + 0.75 * Math.sqrt(n / most)).toFixed(2) + "em";
      return link;
    });
    $(".cloud", this.node).replaceChildren(...cloud);
  }

  updateTimes() {
    for (const when of this.list.querySelectorAll(".when")) when.textContent = relativeTime(Number(when.dataset.ts));
  }
}

class Page {
  constructor() {
    this.columns = [];
    this.pending = new Set();
    this.client = new Birdwatch({
      onStatus: (status) => this.status(status),
      onStats: (stats) => this.stats(stats),
    });
    const queries = new URLSearchParams(location.search).getAll("q");
    for (const query of queries.length ? queries : DEFAULT_QUERIES) this.add(query);
    $("#add").onsubmit = (event) => {
      event.preventDefault();
      this.tryAdd($("#new-query").value);
    };
    // Hashtags and cloud words add a search instead of leaving the page.
    document.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-query]");
      if (!link || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      this.tryAdd(link.dataset.query);
    });
    setInterval(() => { for (const column of this.columns) column.renderAnalytics(); }, 2000);
    setInterval(() => { for (const column of this.columns) column.updateTimes(); }, 15000);
  }

  add(query) {
    const column = new Column(this, query);
    this.columns.push(column);
    $("#columns").append(column.node);
    return column;
  }

  // A search from the box becomes a column only once the server accepted its query.
  tryAdd(query) {
    const error = $("#add-error");
    error.textContent = "";
    if (!query.trim()) return;
    const column = new Column(this, query);
    column.search.handlers.onError = (e) => {
      error.textContent = e.message;
    };
    const accepted = column.search.handlers.onSubscribed;
    column.search.handlers.onSubscribed = (canonical) => {
      this.columns.push(column);
      $("#columns").append(column.node);
      $("#new-query").value = "";
      accepted(canonical);
    };
  }

  remove(column) {
    column.search.close();
    column.node.remove();
    this.columns = this.columns.filter((c) => c !== column);
    this.saveUrl();
  }

  saveUrl() {
    const params = new URLSearchParams();
    for (const column of this.columns) params.append("q", column.input.value);
    history.replaceState(null, "", "?" + params.toString());
  }

  // Rendering waits for the next frame: a burst of tweets costs one layout per column.
  schedule(column) {
    this.pending.add(column);
    if (this.pending.size > 1) return;
    requestAnimationFrame(() => {
      for (const c of this.pending) c.render();
      this.pending.clear();
    });
  }

  status({ state, retryMs, error }) {
    const line = $("#connection");
    line.className = state;
    line.textContent = state === "connected" ? "live"
      : state === "disconnected" ? `reconnecting in ${Math.ceil(retryMs / 1000)} s…`
      : state === "error" ? error.message : "connecting…";
  }

  stats(m) {
    $("#users").textContent = compact(m.users);
    $("#stored").textContent = m.tweets_stored == null ? "–" : compact(m.tweets_stored);
    $("#rate").textContent = m.tweets_per_second.toFixed(1);
  }
}

new Page();
