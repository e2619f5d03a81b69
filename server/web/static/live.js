// One WebSocket for everything live, with the protocol's resume.
//
// It authenticates with an `auth` frame (a browser cannot set headers on a WebSocket, and
// a token never goes in a URL), subscribes to every channel the page wants with the last
// position it processed, and reconnects by itself: at once (with jitter) after a planned
// close, with exponential backoff after a network loss. A subscribe answered
// `recovered: false` asks the page to refetch that channel over REST.

// Backoff: 0.5 s doubling up to 30 s, full jitter; reset once a socket has lasted 30 s.
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const STABLE_MS = 30_000;
// 4008 and 4029 ask for at least ~5 s before trying again.
const BACK_OFF_LONGER_MS = 5_000;
// Without a reply to our ping for two heartbeats, the path is dead: reconnect.
const MISSED_HEARTBEATS = 2;

export class Live {
  constructor(api, { onEvent, onResync, onStatus }) {
    this.api = api;
    this.onEvent = onEvent;
    this.onResync = onResync;
    this.onStatus = onStatus;
    this.ws = null;
    this.nextId = 0;
    this.pending = new Map(); // request id -> {resolve, reject}
    this.channels = new Map(); // what the page wants: channel -> how many parts want it
    this.positions = new Map(); // channel -> {offset, epoch} of the last event processed
    this.attempt = 0;
    this.timer = null;
    this.heartbeat = null;
    this.lastReply = 0;
    this.authed = false;
    this.stopped = true;
    this.status = "offline";
    api.onTokens = (token) => {
      // A fresh token extends the open socket's session.
      if (this.authed) this.call("auth", { token }).catch(() => {});
    };
  }

  start() {
    this.stopped = false;
    if (!this.watchingNetwork) {
      this.watchingNetwork = true;
      // The network is back: try now rather than at the end of a long backoff.
      window.addEventListener("online", () => {
        if (this.stopped || this.ws) return;
        clearTimeout(this.timer);
        this.attempt = 0;
        this.connect();
      });
    }
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.channels.clear();
    this.positions.clear();
    if (this.ws) this.ws.close(1000, "logged out");
    this.teardown();
  }

  // Parts of the page share channels (a post's thread and the feed around it): the
  // socket is on a channel while at least one part wants it.
  subscribe(channel) {
    const wanted = this.channels.get(channel) || 0;
    this.channels.set(channel, wanted + 1);
    if (wanted === 0 && this.authed) this.subscribeOne(channel);
  }

  unsubscribe(channel) {
    const wanted = this.channels.get(channel) || 0;
    if (wanted > 1) {
      this.channels.set(channel, wanted - 1);
      return;
    }
    this.channels.delete(channel);
    this.positions.delete(channel);
    if (wanted === 1 && this.authed) this.call("unsubscribe", { channel }).catch(() => {});
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.onStatus(status);
  }

  connect() {
    if (this.stopped || !this.api.accessToken) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
    this.ws = ws;
    if (this.status !== "reconnecting") this.setStatus("connecting");
    ws.onopen = () => this.authenticate(ws);
    ws.onmessage = (message) => this.receive(ws, message.data);
    ws.onclose = (event) => this.closed(ws, event.code);
  }

  async authenticate(ws) {
    this.openedAt = Date.now();
    try {
      const result = await this.call("auth", { token: this.api.accessToken });
      if (ws !== this.ws) return;
      this.authed = true;
      this.setStatus("live");
      this.startHeartbeat(result.heartbeat_s);
      for (const channel of this.channels.keys()) this.subscribeOne(channel);
    } catch (error) {
      if (ws !== this.ws) return;
      // A token that expired meanwhile: the close handler refreshes, then reconnects.
      ws.close(4401, "authentication failed");
    }
  }

  async subscribeOne(channel) {
    const since = this.positions.get(channel);
    let result;
    try {
      result = await this.call("subscribe", since ? { channel, since } : { channel });
    } catch (error) {
      if (error.code === "closed") return; // the next socket subscribes again
      if (error.retryable) {
        const wait = (error.details?.retry_after || 1) * 1000;
        setTimeout(() => {
          if (this.authed && this.channels.has(channel)) this.subscribeOne(channel);
        }, wait);
      } else {
        this.channels.delete(channel); // gone (a deleted post) or not ours to see
      }
      return;
    }
    if (!this.channels.has(channel)) return;
    // The reply's position is that of its last event: live pushes go on from there.
    this.positions.set(channel, { offset: result.offset, epoch: result.epoch });
    // We may have missed events (or have just arrived): REST holds the truth.
    if (!result.recovered) await this.onResync(channel, { resumed: since !== undefined });
    for (const push of result.events) this.onEvent(push.channel, push.event);
  }

  deliver(push) {
    const last = this.positions.get(push.channel);
    // The overlap of a re-subscribe: an event already processed comes again.
    if (last && last.offset === push.offset && last.epoch === push.epoch) return;
    if (!this.channels.has(push.channel)) return;
    this.positions.set(push.channel, { offset: push.offset, epoch: push.epoch });
    this.onEvent(push.channel, push.event);
  }

  call(op, args = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(Object.assign(new Error("not connected"), { code: "closed" }));
    }
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, op, ...args }));
    });
  }

  receive(ws, data) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    this.lastReply = Date.now();
    if (frame.push === "event") {
      this.deliver(frame);
    } else if (frame.push === "close_soon") {
      this.setStatus("reconnecting");
    } else if (typeof frame.id === "number" && this.pending.has(frame.id)) {
      const { resolve, reject } = this.pending.get(frame.id);
      this.pending.delete(frame.id);
      if (frame.ok) resolve(frame.result);
      else reject(Object.assign(new Error(frame.error.message), frame.error));
    }
  }

  startHeartbeat(seconds) {
    clearInterval(this.heartbeat);
    const interval = Math.max(1, seconds) * 1000;
    this.lastReply = Date.now();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastReply > interval * MISSED_HEARTBEATS) {
        this.ws?.close(4000, "heartbeat lost");
        return;
      }
      this.call("ping").catch(() => {});
    }, interval);
  }

  teardown() {
    clearInterval(this.heartbeat);
    this.authed = false;
    for (const { reject } of this.pending.values()) {
      reject(Object.assign(new Error("connection closed"), { code: "closed" }));
    }
    this.pending.clear();
    this.ws = null;
  }

  async closed(ws, code) {
    if (ws !== this.ws) return;
    const lasted = Date.now() - (this.openedAt || Date.now());
    this.openedAt = 0;
    this.teardown();
    if (this.stopped) return;
    // 1000 is a close on purpose, 1009/4500+ need a fix: do not come back by ourselves.
    if (code === 1000 || code === 1009 || code >= 4500) {
      this.setStatus("offline");
      return;
    }
    this.setStatus("reconnecting");
    if (lasted >= STABLE_MS) this.attempt = 0;
    if (code === 4401) {
      try {
        await this.api.refresh();
      } catch (error) {
        if (error.status === 401) return; // logged out: the page shows the login form
      }
    }
    let delay;
    if (code === 4000 || code === 4001) {
      delay = Math.random() * BACKOFF_FIRST_MS;
    } else {
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
      delay = Math.random() * cap;
      this.attempt += 1;
    }
    if (code === 4008 || code === 4029) delay = Math.max(delay, BACK_OFF_LONGER_MS);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
