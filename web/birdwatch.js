// The birdwatch web client: one WebSocket to the replica that served this page,
// one live search at a time, history paging, reconnect with resume, gaps filled
// (docs/protocol.md).
(() => {
  const list = document.getElementById("tweets");
  const status = document.getElementById("status");
  const older = document.getElementById("older");
  const seen = new Set();
  let socket, qid = null, query = document.getElementById("query").value, newest = null, nextBefore = null, retry = 1;

  const say = (text, error = false) => { status.textContent = text; status.className = error ? "error" : ""; };

  function render(tweet) {
    if (seen.has(tweet.id)) return;  // live, history and resume may overlap: merge by id
    seen.add(tweet.id);
    if (!newest || BigInt(tweet.id) > BigInt(newest)) newest = tweet.id;
    const item = document.createElement("li");
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = "@" + tweet.user.screen_name;
    const when = document.createElement("span");
    when.className = "when";
    when.textContent = new Date(tweet.timestamp_ms).toLocaleString();
    if (tweet.retweet_of_user) who.textContent += " ↻ @" + tweet.retweet_of_user;  // a Retweet: the original's text
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = tweet.text;
    item.dataset.id = tweet.id;
    item.append(who, when, text);
    if (tweet.quoted) {
      const quoted = document.createElement("blockquote");
      quoted.className = "quoted";
      quoted.textContent = "@" + tweet.quoted.user.screen_name + ": " + tweet.quoted.text;
      item.append(quoted);
    }
    // Newest first, by id: live, history and resumed tweets (which may arrive after newer
    // live ones) all take their place in one order.
    const newer = BigInt(tweet.id);
    const before = [...list.children].find((li) => BigInt(li.dataset.id) < newer);
    list.insertBefore(item, before || null);
  }

  function remove(id) {  // deleted at its source: shown nowhere any more
    for (const item of list.querySelectorAll("li")) if (item.dataset.id === id) item.remove();
  }

  function send(message) { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message)); }

  function subscribe(text, resume) {
    if (qid && !resume) send({ type: "unsubscribe", qid });
    query = text;
    send({ type: "subscribe", query });
  }

  function connect() {
    socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
    socket.onopen = () => { retry = 1; say("connected"); subscribe(query, qid !== null); };
    socket.onclose = () => {
      say("disconnected, reconnecting in " + retry + " s", true);
      setTimeout(connect, retry * 1000 + Math.random() * 500);  // backoff with jitter: no reconnect storms
      retry = Math.min(retry * 2, 16);
    };
    // A frame carries one or more messages, one per line (docs/protocol.md).
    socket.onmessage = (event) => { for (const line of event.data.split("\n")) receive(JSON.parse(line)); };
    const receive = (m) => {
      if (m.type === "tweet") render(m.tweet);
      else if (m.type === "subscribed") {
        const resumed = qid === m.qid && newest;
        qid = m.qid;
        say("live: " + m.query);
        if (resumed) send({ type: "resume", qid, since_id: newest });
        else send({ type: "history", qid, size: 20 });
      } else if (m.type === "delete") {
        remove(m.id);
      } else if (m.type === "gap") {  // the replica may have missed tweets: fetch them from the store
        if (qid) send({ type: "resume", qid, since_id: m.after_id, before_id: m.before_id });
      } else if (m.type === "history" || m.type === "resumed") {
        for (const t of m.tweets) render(t);
        if (m.type === "history") { nextBefore = m.next_before; older.hidden = !nextBefore; }
        else if (m.next_since)  // resumed in pages
          send({ type: "resume", qid, since_id: m.next_since, ...(m.before_id ? { before_id: m.before_id } : {}) });
      } else if (m.type === "stats") {
        document.title = "birdwatch · " + m.users + " watching · " + m.tweets_per_second + " tweets/s";
      } else if (m.type === "error") {
        say(m.message + (m.position !== undefined ? " (at " + m.position + ")" : ""), true);
      }
    };
  }

  document.getElementById("search").onsubmit = (event) => {
    event.preventDefault();
    list.replaceChildren();
    seen.clear();
    newest = null;
    subscribe(document.getElementById("query").value, false);
  };
  older.onclick = () => send({ type: "history", qid, size: 20, before: nextBefore });
  connect();
})();
