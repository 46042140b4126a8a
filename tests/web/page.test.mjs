// The page in headless Chromium against the real system (tests/web/system.mjs).
//   node tests/web/page.test.mjs SCENARIO      search | reconnect | load | xss | jetstream
// Needs BIRDWATCH_BIN_DIR (a build dir); writes screenshots to BIRDWATCH_WEB_OUTPUT.
// Exits 77 (skipped) where Chromium or playwright-core is missing.
import fs from "node:fs";
import path from "node:path";
import { OUTPUT_DIR, CHROMIUM, check, scenario, sleep, waitFor } from "./system.mjs";

try {
  await import("playwright-core");
  if (!fs.existsSync(CHROMIUM)) throw new Error(CHROMIUM + " is missing");
} catch (e) {
  console.log(`skipped: ${e.message} (scripts/install-deps installs chromium and tests/web's npm packages)`);
  process.exit(77);
}

const column = (page, n) => page.locator(".column").nth(n);
const shownIds = (page, n) => column(page, n).locator(".tweet").evaluateAll((items) => items.map((li) => li.dataset.id));
const shownTexts = (page, n) => column(page, n).locator(".tweet").evaluateAll((items) =>
  items.map((li) => [...li.querySelectorAll(".text, .quoted")].map((p) => p.textContent).join(" ").toLowerCase()));
const count = async (page, n) => Number(await column(page, n).locator(".count").textContent());

// Every stored match of `query`, newest first, by paging history on a connection of its own.
async function storedMatches(page, query) {
  return page.evaluate(async (query) => {
    const socket = new WebSocket(`ws://${location.host}/ws`);
    await new Promise((resolve) => (socket.onopen = resolve));
    const ids = [];
    await new Promise((resolve) => {
      socket.onmessage = (event) => {
        for (const line of event.data.split("\n")) {
          const m = JSON.parse(line);
          if (m.type !== "history") continue;
          ids.push(...m.tweets.map((t) => t.id));
          if (m.next_before) socket.send(JSON.stringify({ type: "history", query, size: 100, before: m.next_before }));
          else resolve();
        }
      };
      socket.send(JSON.stringify({ type: "history", query, size: 100 }));
    });
    socket.close();
    return ids;
  }, query);
}

async function addSearch(page, query) {
  await page.fill("#new-query", query);
  await page.click("#add button");
}

const scenarios = {};

scenarios.search = () => scenario("search", { rate: 100 }, async ({ system, page }) => {
  await sleep(3000);  // the store holds more than a page of coffee tweets: there are earlier ones to load
  await page.goto(system.url + "?q=coffee");
  await waitFor("coffee tweets", async () => (await column(page, 0).locator(".tweet").count()) >= 5, 20000);
  await addSearch(page, "música");
  await waitFor("a second column", async () => (await page.locator(".column").count()) === 2, 10000);
  await waitFor("música tweets", async () => (await column(page, 1).locator(".tweet").count()) >= 5, 20000);
  check(new URL(page.url()).searchParams.getAll("q").join("|") === "coffee|música", "the URL holds both searches: " + page.url());
  // Chromium offered permessage-deflate and the fanout took it: the tweets above came compressed.
  const metrics = await (await fetch(system.url + "metrics")).text();
  const compressed = Number(/^birdwatch_fanout_compressed_connections (\S+)$/m.exec(metrics)?.[1]);
  const wire = Number(/^birdwatch_fanout_wire_bytes_total (\S+)$/m.exec(metrics)?.[1]);
  const sent = Number(/^birdwatch_fanout_bytes_sent_total (\S+)$/m.exec(metrics)?.[1]);
  check(compressed >= 1, "the page's connection negotiated permessage-deflate: compressed connections " + compressed);
  check(wire < sent, `tweets went out compressed: ${wire} bytes on the wire for ${sent} message bytes`);
  for (const [n, word] of [[0, "coffee"], [1, "música"]]) {
    const texts = await shownTexts(page, n);
    const strays = texts.filter((t) => !t.includes(word));
    check(strays.length === 0, `column ${n} shows tweets without "${word}": ${strays.slice(0, 3).join(" / ")}`);
  }
  // Links: hashtags add a search here, URLs and mentions leave for their sites.
  const hrefs = await page.locator(".tweet .text a").evaluateAll((links) => links.map((a) => a.getAttribute("href")));
  check(hrefs.length > 0, "tweets render with links");
  check(hrefs.every((h) => h.startsWith("?q=") || h.startsWith("https://") || h.startsWith("http://")), "links: " + hrefs.join(" "));

  // Earlier tweets: the column grows by pages from the store, beyond the first history
  // page and what arrived live.
  const earlier = column(page, 0).locator(".earlier");
  await waitFor("the load-earlier button", () => earlier.isVisible(), 10000);
  const live = await count(page, 0);
  await earlier.click();
  await earlier.click();
  await waitFor("earlier tweets from the store", async () =>
    (await column(page, 0).locator(".tweet").count()) > live + 20, 10000);

  // A typo in a column's query: its error beside the box, the search it had keeps running.
  const query = column(page, 0).locator(".query");
  await query.fill("coffee OR");
  await query.press("Enter");
  await waitFor("the query error", async () => (await column(page, 0).locator(".query-error").textContent()) !== "", 10000);
  const running = await count(page, 0);
  await waitFor("more coffee tweets after the error", async () => (await count(page, 0)) > running, 20000);
  const texts = await shownTexts(page, 0);
  check(texts.every((t) => t.includes("coffee")), "the column still shows coffee tweets only");
  // Sorted by retweets; the header's live figures.
  await column(page, 1).locator(".sort").selectOption("retweets");
  let retweets = [];
  await waitFor("the column sorted by retweets", async () => {
    retweets = await column(page, 1).locator(".tweet").evaluateAll((items) => items.map((li) => Number(li.dataset.retweets)));
    return retweets.length > 1 && retweets.every((n, i) => i === 0 || retweets[i - 1] >= n);
  }, 5000);
  await waitFor("the header's figures", async () => Number(await page.textContent("#users")) >= 1 &&
    Number(await page.textContent("#rate")) > 0, 10000);
  await page.locator("#help summary").click();
  check(await page.locator("#help table").isVisible(), "syntax help opens");
  await page.screenshot({ path: path.join(OUTPUT_DIR, "searches.png") });
});

// 2. The fanout SIGKILLed and started again: the page reconnects and, once the stream ends,
//    shows exactly the stored matches, once each, newest first.
// While no replica runs, the browser logs each refused reconnect.
scenarios.reconnect = () => scenario("reconnect", { rate: 100, expectedConsole: /ERR_CONNECTION_REFUSED/ }, async ({ system, page }) => {
  const query = "kaffee";  // a few matches a second: every one of them stays in the DOM
  await page.goto(system.url + "?q=" + query);
  await waitFor("tweets", async () => (await count(page, 0)) >= 3, 20000);
  await system.fanout.stop("SIGKILL");
  await waitFor("the page noticing", async () => (await page.textContent("#connection")).includes("reconnecting"), 10000);
  await sleep(2000);  // tweets go on being stored while no replica runs
  await system.startFanout();
  await waitFor("the page live again", async () => (await page.textContent("#connection")) === "live", 40000);
  await sleep(2000);
  await system.ingest.stop();
  await sleep(1500);
  const expected = await storedMatches(page, query);
  check(expected.length > 0 && expected.length <= 60, `the test query matches what one column shows (${expected.length})`);
  await waitFor("every stored match shown", async () => (await shownIds(page, 0)).length >= expected.length, 15000);
  const shown = await shownIds(page, 0);
  check(JSON.stringify(shown) === JSON.stringify(expected),
        `shown ${shown.length} != stored ${expected.length}; missing ${expected.filter((id) => !shown.includes(id)).length}`);
  console.log(`reconnect: ${shown.length} stored matches shown once each, newest first, across a fanout SIGKILL`);
});

// 3. 500 tweets/s for 60 s: the DOM stays bounded and typing answers fast.
scenarios.load = () => scenario("load", { rate: 500, boundMs: 240000 }, async ({ system, page }) => {
  const DOM_BOUND = 6000;
  await page.goto(system.url + "?q=" + encodeURIComponent("the OR hoy OR #music") + "&q=" + encodeURIComponent("música OR love"));
  await page.evaluate(() => {
    window.typingDelays = [];
    const box = document.querySelector("#new-query");
    box.addEventListener("keydown", () => {
      const pressed = performance.now();
      requestAnimationFrame(() => setTimeout(() => window.typingDelays.push(performance.now() - pressed), 0));
    });
  });
  let largest = 0;
  for (let second = 0; second < 60; second += 5) {
    await sleep(5000);
    largest = Math.max(largest, await page.evaluate(() => document.getElementsByTagName("*").length));
    await page.locator("#new-query").pressSequentially("abc", { delay: 30 });
    await page.fill("#new-query", "");
  }
  const delays = await page.evaluate(() => window.typingDelays);
  const received = await count(page, 0);
  console.log(`load: ${received} tweets received in column 1, DOM at most ${largest} elements, ` +
              `typing answered in at most ${Math.max(...delays).toFixed(0)} ms over ${delays.length} keys`);
  check(received > 5000, "the stream ran at hundreds of matches a second");
  check(largest < DOM_BOUND, `the DOM grew to ${largest} elements`);
  check(Math.max(...delays) < 200, "typing answered within 200 ms: " + delays.map((d) => d.toFixed(0)).join(" "));
  await sleep(2500);  // one more round of the chart and the word cloud
  await page.screenshot({ path: path.join(OUTPUT_DIR, "load.png") });
});

// 4. Hostile text renders as text; the page comes with its security headers.
scenarios.xss = () => {
  const file = path.join(OUTPUT_DIR, "xss.ndjson");
  const texts = ['xsscheck <script>window.pwned = 1</script>', 'xsscheck <img src=x onerror="window.pwned = 2">',
                 'xsscheck javascript:window.pwned=3 and <a href="javascript:window.pwned=4">click</a>'];
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  fs.writeFileSync(file, texts.map((text, i) => JSON.stringify({
    id_str: String(1500000000000000000n + BigInt(i)), text, timestamp_ms: String(Date.now()),
    user: { id_str: "1", screen_name: "mallory", name: "<b>Mallory</b>" },
    entities: { hashtags: [], user_mentions: [], urls: [{ url: "javascript:alert(1)", expanded_url: "javascript:alert(1)" }] },
  })).join("\n") + "\n");
  return scenario("xss", { replay: file, rate: 2 }, async ({ system, page }) => {
    const response = await page.goto(system.url + "?q=xsscheck");
    const headers = response.headers();
    check((headers["content-security-policy"] || "").includes("script-src 'self'"), "CSP: " + headers["content-security-policy"]);
    check(headers["x-content-type-options"] === "nosniff", "nosniff");
    check(headers["x-frame-options"] === "DENY", "X-Frame-Options");
    await waitFor("the hostile tweets", async () => (await column(page, 0).locator(".tweet").count()) === 3, 20000);
    const shown = await column(page, 0).locator(".tweet .text").allTextContents();
    for (const text of texts) check(shown.includes(text), "shown as text: " + text);
    check(await page.evaluate(() => window.pwned === undefined), "no script ran");
    check((await page.locator(".tweet script, .tweet img, .tweet b").count()) === 0, "no markup from a tweet");
    const hrefs = await page.locator(".tweet a").evaluateAll((links) => links.map((a) => a.getAttribute("href")));
    check(hrefs.every((h) => !h.toLowerCase().startsWith("javascript:")), "no javascript: link: " + hrefs.join(" "));
    check((await page.locator(".tweet .name").first().textContent()) === "<b>Mallory</b>", "names as text");
    const favicon = await page.evaluate(async () => (await fetch("/favicon.svg")).status);
    check(favicon === 200, "a favicon");
  });
};

// 5. Bluesky posts from the Jetstream stand-in: a hashtag from a facet, a mention of a
//    Bluesky handle and a word found only in a quoted post each bring exactly their posts.
//    What each search must show is worked out here from the events the stand-in served,
//    with the id rule of docs/protocol.md.
function fnv1a64(text) {
  let hash = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  return hash;
}
function expectedJetstreamMatches(file) {
  const posts = new Map();  // at:// uri -> { id, tags, mentions, words }
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    const event = JSON.parse(line);
    if (event.kind !== "commit" || event.commit.collection !== "app.bsky.feed.post") continue;
    const { record, rkey } = event.commit;
    const bytes = new TextEncoder().encode(record.text);
    const post = { tags: [], mentions: [], words: record.text.toLowerCase().split(/[^\p{L}\p{N}_]+/u),
      id: String((BigInt(event.time_us) << 10n) | (fnv1a64(`${event.did}/${rkey}`) & 1023n)) };
    for (const facet of record.facets ?? [])
      for (const feature of facet.features) {
        if (feature.$type.endsWith("#tag")) post.tags.push(feature.tag.toLowerCase());
        if (feature.$type.endsWith("#mention"))
          post.mentions.push(new TextDecoder().decode(bytes.slice(facet.index.byteStart + 1, facet.index.byteEnd)));
      }
    const quotedUri = record.embed?.record?.uri ?? record.embed?.record?.record?.uri;
    post.quoted = quotedUri ? posts.get(quotedUri) : undefined;
    posts.set(`at://${event.did}/app.bsky.feed.post/${rkey}`, post);
  }
  const matching = (test) => [...posts.values()].filter((p) => test(p) || (p.quoted && test(p.quoted))).map((p) => p.id);
  return {
    "#birdwatch": matching((p) => p.tags.includes("birdwatch")),
    "@alice.bsky.social": matching((p) => p.mentions.includes("alice.bsky.social")),
    "zeppelin": matching((p) => p.words.includes("zeppelin")),
  };
}

scenarios.jetstream = () => scenario("jetstream", { jetstream: 150, rate: 40 }, async ({ system, page }) => {
  const expected = expectedJetstreamMatches(system.jetstreamEvents);
  const queries = Object.keys(expected);
  await page.goto(system.url + "?" + queries.map((q) => "q=" + encodeURIComponent(q)).join("&"));
  await waitFor("three columns", async () => (await page.locator(".column").count()) === 3, 10000);
  for (const [n, query] of queries.entries()) {
    const want = [...expected[query]].sort();
    check(want.length >= 2 && want.length <= 60, `${query}: ${want.length} posts to show`);
    let shown = [];
    // Posts stored before the page opened come as history, a page at a time.
    await waitFor(`the ${want.length} posts of ${query}`, async () => {
      shown = (await shownIds(page, n)).sort();
      if (shown.length < want.length && await column(page, n).locator(".earlier").isVisible())
        await column(page, n).locator(".earlier").click();
      return shown.length >= want.length;
    }, 30000);
    await sleep(500);
    shown = (await shownIds(page, n)).sort();
    check(JSON.stringify(shown) === JSON.stringify(want), `${query}: shown ${shown.join(" ")}, expected ${want.join(" ")}`);
  }
  const zeppelin = await shownTexts(page, 2);
  check(zeppelin.some((t) => t.startsWith("look at this one") && t.includes("zeppelin")),
        "the quoting post shows the quoted text: " + zeppelin.join(" / "));
  const links = await page.locator(".tweet a.when").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  check(links.every((h) => h.startsWith("https://bsky.app/profile/did:plc:")), "posts link to bsky.app: " + links[0]);
  const mentions = await column(page, 1).locator(".text a.mention").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  check(mentions.includes("https://bsky.app/profile/alice.bsky.social"), "mentions link to Bluesky profiles: " + mentions.join(" "));
  await page.screenshot({ path: path.join(OUTPUT_DIR, "jetstream.png") });
});

const name = process.argv[2];
if (!scenarios[name]) {
  console.error("usage: page.test.mjs " + Object.keys(scenarios).join(" | "));
  process.exit(2);
}
await scenarios[name]();
