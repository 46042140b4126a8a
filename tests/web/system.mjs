// The real system for the page's tests: redis-server, the ingest (synthetic, replayed or
// Jetstream posts into SQLite; Jetstream from tests/support's stand-in) and a fanout
// serving web/, as processes on free loopback ports; and headless Debian Chromium driven
// by playwright-core.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const BIN_DIR = process.env.BIRDWATCH_BIN_DIR;
export const SOURCE_DIR = process.env.BIRDWATCH_SOURCE_DIR ?? path.resolve(import.meta.dirname, "../..");
export const OUTPUT_DIR = process.env.BIRDWATCH_WEB_OUTPUT ?? path.join(os.tmpdir(), "birdwatch-web");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Below Linux's ephemeral range, as tests/support/process.cpp picks them: the fanout is
// restarted on its port, which an outgoing connection must not have taken meanwhile.
let nextPort = process.pid * 7919;
export async function freePort() {
  for (let attempt = 0; attempt < 12768; ++attempt) {
    const port = 20000 + ((nextPort += 131) % 12768);
    const server = net.createServer();
    const bound = await new Promise((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (bound) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
  throw new Error("no free port below 32768");
}

export async function waitFor(what, predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

async function httpStatus(port, route) {
  try { return (await fetch(`http://127.0.0.1:${port}${route}`)).status; } catch { return 0; }
}

class Process {
  constructor(name, argv, dir) {
    this.name = name;
    this.log = path.join(dir, name + ".log");
    const out = fs.openSync(this.log, "a");
    this.child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", out, out] });
    // The page's responsiveness is under test, not the sanitizer-built daemons' CPU cost: on
    // two cores they yield to the browser (nice 10).
    if (this.child.pid) os.setPriority(this.child.pid, 10);
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
  }
  async stop(signal = "SIGTERM") {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await this.exited;
  }
  tail(lines = 20) { return fs.readFileSync(this.log, "utf8").split("\n").slice(-lines).join("\n"); }
}

export class System {
  // source: { rate } for the synthetic stream, { replay: file } for an NDJSON file, or
  // { jetstream: posts } for that many generated Bluesky posts served by the stand-in at `rate`.
  static async start({ rate = 50, replay = null, jetstream = 0 } = {}) {
    const system = new System();
    system.dir = fs.mkdtempSync(path.join(os.tmpdir(), "birdwatch-web-"));
    system.db = path.join(system.dir, "ingest.db");
    system.redisPort = await freePort();
    system.redis = new Process("redis", ["redis-server", "--port", String(system.redisPort), "--bind", "127.0.0.1",
      "--save", "", "--appendonly", "no"], system.dir);
    await waitFor("redis", async () => new Promise((resolve) => {
      const socket = net.connect(system.redisPort, "127.0.0.1", () => { socket.end(); resolve(true); });
      socket.on("error", () => resolve(false));
    }), 10000);
    let source = ["--source.synthetic.rate=" + rate, "--source.synthetic.seed=7"];
    if (replay) source = ["--source.kind=replay", "--source.replay.path=" + replay, "--source.replay.rate=" + rate];
    if (jetstream) {
      const port = await freePort();
      system.jetstreamEvents = path.join(system.dir, "jetstream-events.jsonl");
      system.standin = new Process("jetstream-standin", [path.join(BIN_DIR, "tests/jetstream-standin"), "--port",
        String(port), "--generate", String(jetstream), "--rate", String(rate), "--write-events", system.jetstreamEvents],
        system.dir);
      await waitFor("the Jetstream stand-in", () => fs.existsSync(system.jetstreamEvents) &&
        fs.readFileSync(system.standin.log, "utf8").includes("listening"), 10000);
      source = ["--source.kind=jetstream", `--source.jetstream.endpoints=["ws://127.0.0.1:${port}/subscribe"]`];
    }
    system.startIngest(source);
    await waitFor("the store file", () => fs.existsSync(system.db), 10000);
    system.port = await freePort();
    await system.startFanout();
    return system;
  }

  startIngest(sourceFlags) {
    this.ingest = new Process("ingest", [path.join(BIN_DIR, "ingest/birdwatch-ingest"),
      "--redis.port", String(this.redisPort), "--http.port=-1", "--registry.sweep_ms=200",
      "--store.sqlite.path=" + this.db, "--store.spool.dir=" + path.join(this.dir, "spool"), ...sourceFlags], this.dir);
  }

  async startFanout() {
    this.fanout = new Process("fanout", [path.join(BIN_DIR, "fanout/birdwatch-fanout"),
      "--redis.port", String(this.redisPort), "--http.port", String(this.port), "--http.threads", "2",
      "--http.static_dir=" + path.join(SOURCE_DIR, "web"), "--store.kind=sqlite", "--store.sqlite.path=" + this.db,
      "--registry.lease_ttl_ms=2000", "--registry.refresh_ms=500", "--stats.interval_ms=500"], this.dir);
    await waitFor("the fanout's /readyz", async () => (await httpStatus(this.port, "/readyz")) === 200, 15000);
  }

  get url() { return `http://127.0.0.1:${this.port}/`; }

  async stop() {
    for (const p of [this.fanout, this.ingest, this.standin, this.redis]) await p?.stop();
    if (!process.env.BIRDWATCH_KEEP_TEST_DIRS) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function launchBrowser() {
  const { chromium } = await import("playwright-core");
  // The flags this machine needs: its network is closed, and Chromium's background
  // connections would otherwise be refused many at a time.
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// Runs one scenario: a fresh system and browser page, always torn down; exit code 1 on failure.
export async function scenario(name, options, body) {
  fs.mkdirSync(OUTPUT_DIR, { recursive: true });
  const timer = setTimeout(() => { console.error(`${name}: over its time bound`); process.exit(1); }, options.boundMs ?? 180000);
  let system, browser;
  try {
    system = await System.start(options);
    browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const problems = [];
    page.on("pageerror", (e) => problems.push("page error: " + e.message));
    page.on("console", (m) => {
      if (m.type() === "error" && !options.expectedConsole?.test(m.text())) problems.push("console error: " + m.text());
    });
    await body({ system, page, problems });
    if (problems.length) throw new Error(problems.join("\n"));
    console.log(`${name}: passed`);
  } catch (e) {
    console.error(`${name}: FAILED: ${e.stack || e}`);
    if (system) for (const p of [system.ingest, system.fanout]) if (p) console.error(`--- ${p.name}:\n${p.tail()}`);
    process.exitCode = 1;
  } finally {
    await browser?.close();
    await system?.stop();
    clearTimeout(timer);
  }
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}
