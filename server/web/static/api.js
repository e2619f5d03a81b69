// REST client of /api/v1: tokens, refresh, errors, paging.
//
// The access token lives in this module's memory only. The refresh token is kept in
// sessionStorage, so a reload keeps this tab logged in while closing the tab ends the
// session (docs/decisions/0007-web-app.md says why).

const API = "/api/v1";
const REFRESH_KEY = "plaza.refresh_token";
// Refresh before the access token expires, as the protocol advises (at 80 %).
const REFRESH_AT = 0.8;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class Api {
  constructor() {
    this.accessToken = null;
    this.me = null;
    this.refreshing = null;
    this.refreshTimer = null;
    this.onTokens = () => {};
    this.onLoggedOut = () => {};
  }

  hasSession() {
    return sessionStorage.getItem(REFRESH_KEY) !== null;
  }

  async register(username, email, password) {
    return this.request("POST", "/auth/register", { json: { username, email, password }, auth: false });
  }

  async login(login, password) {
    const pair = await this.request("POST", "/auth/login", { json: { login, password }, auth: false });
    this.adopt(pair);
    return pair.user;
  }

  // One refresh at a time: a spent refresh token presented twice revokes the login.
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async doRefresh() {
    const token = sessionStorage.getItem(REFRESH_KEY);
    if (token === null) throw new ApiError(401, "unauthenticated", "not logged in");
    try {
      const pair = await this.request("POST", "/auth/refresh", {
        json: { refresh_token: token },
        auth: false,
      });
      this.adopt(pair);
      return pair.user;
    } catch (error) {
      if (error.status === 401) this.forget();
      throw error;
    }
  }

  async logout() {
    const token = sessionStorage.getItem(REFRESH_KEY);
    this.forget();
    if (token !== null) {
      await this.request("POST", "/auth/logout", { json: { refresh_token: token }, auth: false }).catch(() => {});
    }
  }

  adopt(pair) {
    this.accessToken = pair.access_token;
    this.me = pair.user;
    sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refresh().catch(() => {});
    }, pair.expires_in * REFRESH_AT * 1000);
    this.onTokens(pair.access_token);
  }

  forget() {
    const wasIn = this.accessToken !== null;
    this.accessToken = null;
    this.me = null;
    clearTimeout(this.refreshTimer);
    sessionStorage.removeItem(REFRESH_KEY);
    if (wasIn) this.onLoggedOut();
  }

  get(path) {
    return this.request("GET", path);
  }

  // A list page: {items, next} where next is the path of the older page (or null).
  async page(path) {
    const response = await this.send("GET", path, {});
    const items = await response.json();
    return { items, next: items.length ? nextPath(response.headers.get("link")) : null };
  }

  async upload(file) {
    const form = new FormData();
    form.append("file", file);
    return this.request("POST", "/media", { form });
  }

  async request(method, path, options = {}) {
    const response = await this.send(method, path, options);
    if (response.status === 204) return null;
    return response.json();
  }

  async send(method, path, { json, form, headers = {}, auth = true }, retried = false) {
    const init = { method, headers: { ...headers } };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (form !== undefined) {
      init.body = form;
    }
    if (auth && this.accessToken) init.headers.Authorization = `Bearer ${this.accessToken}`;
    const url = path.startsWith(API) ? path : API + path;
    const response = await fetch(url, init);
    if (response.ok) return response;
    const body = await response.json().catch(() => ({}));
    const error = body.error || {};
    if (response.status === 401 && auth && !retried && this.hasSession()) {
      await this.refresh();
      return this.send(method, path, { json, form, headers, auth }, true);
    }
    throw new ApiError(response.status, error.code, error.message, error.details);
  }
}

// The `rel="next"` target of a Link header, as a same-origin path: the server names its
// own host there, which need not be the one the page was loaded from.
export function nextPath(link) {
  if (!link) return null;
  for (const part of link.split(",")) {
    const match = part.match(/<([^>]+)>\s*;\s*rel="?next"?/);
    if (match) {
      const url = new URL(match[1], location.origin);
      return url.pathname + url.search;
    }
  }
  return null;
}
