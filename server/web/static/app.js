// Plaza's web app: screens, routing (#/...), and what live events do to them.

import { Api } from "./api.js";
import { clear, compareIds, displayName, formatTime, h } from "./dom.js";
import { Live } from "./live.js";
import { PostList } from "./posts.js";

const api = new Api();
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const alertBox = document.getElementById("alert");
const statusBox = document.getElementById("status");

const ctx = {
  api,
  live: null,
  threads: new Map(), // post:{id} -> open comment thread
  lists: new Set(), // post lists on screen or kept (home)
  notify(message) {
    alertBox.textContent = message;
    alertBox.hidden = !message;
  },
  postChanged(post) {
    for (const list of ctx.lists) if (list.posts.has(post.id)) list.upsert(post);
  },
};

const STATUS_TEXT = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline" };

ctx.live = new Live(api, {
  onEvent: applyEvent,
  onResync: resync,
  onStatus(status) {
    statusBox.textContent = STATUS_TEXT[status];
    statusBox.dataset.status = status;
  },
});

// Posts of a list whose likes and comments are followed live: two lists on screen stay
// well inside the socket's 128 channels and its burst of 50 frames at (re)connect.
const LIVE_POSTS = 20;

let home = null; // the home feed, kept across screens
let current = null; // {route, destroy?, onEvent?, onResync?}
let unread = 0;

// --- live events ------------------------------------------------------------------------

function applyEvent(channel, event) {
  const { type, data } = event;
  if (channel === "feed") {
    if (type === "post.created") home?.upsert(data, { fromPush: true });
    else if (type === "post.deleted") forEachList((list) => list.remove(data.post_id));
  } else if (channel === "notifications") {
    if (type === "notifications.unread") setUnread(data.count);
    else if (type === "notification.created") current?.onNotification?.(data);
  } else if (channel.startsWith("post:")) {
    if (type === "post.liked" || type === "post.unliked") {
      forEachList((list) => list.patch(data.post_id, { like_count: data.like_count }));
    } else if (type === "comment.created") {
      ctx.threads.get(channel)?.add(data.comment);
      forEachList((list) => list.patch(data.comment.post_id, { comment_count: data.comment_count }));
    }
  } else {
    current?.onEvent?.(channel, event);
  }
}

async function resync(channel, { resumed }) {
  if (channel === "feed") await home?.refresh();
  else if (channel === "notifications") await refreshNotifications();
  else if (channel.startsWith("post:")) {
    await ctx.threads.get(channel)?.load();
    // A first subscribe comes right after the post was loaded; a lost position means
    // its counts may be stale.
    if (resumed) stalePosts(channel.slice("post:".length));
  } else await current?.onResync?.(channel);
}

// After a restart every post channel is lost at once: one refetch of the feed's first
// page covers most of them, the rest are fetched one by one.
const stale = new Set();
let staleTimer = null;

function stalePosts(id) {
  stale.add(id);
  clearTimeout(staleTimer);
  staleTimer = setTimeout(async () => {
    const ids = [...stale];
    stale.clear();
    const fresh = (await home?.refresh()) || new Set();
    for (const postId of ids) {
      if (fresh.has(postId)) continue;
      api.get(`/posts/${postId}`).then(ctx.postChanged, () => {});
    }
  }, 100);
}

function forEachList(fn) {
  for (const list of ctx.lists) fn(list);
}

async function refreshNotifications() {
  try {
    const { count } = await api.get("/notifications/unread_count");
    setUnread(count);
  } catch (error) {
    ctx.notify(error.message);
  }
  await current?.onNotificationsResync?.();
}

function setUnread(count) {
  unread = count;
  const badge = document.getElementById("unread");
  if (!badge) return;
  badge.textContent = String(count);
  badge.hidden = count === 0;
  badge.setAttribute("aria-label", `${count} unread`);
}

// --- session ----------------------------------------------------------------------------

api.onLoggedOut = () => {
  ctx.live.stop();
  home?.destroy();
  ctx.lists.clear();
  home = null;
  renderNav();
  route();
};

async function start() {
  window.addEventListener("hashchange", route);
  if (api.hasSession()) {
    try {
      await api.refresh();
    } catch {
      // Spent or expired: log in again.
    }
  }
  if (api.me) signedIn();
  else route();
}

function signedIn() {
  renderNav();
  home = new PostList(ctx, { label: "Home feed", firstPage: "/feed?limit=20", livePosts: LIVE_POSTS });
  ctx.lists.add(home);
  ctx.live.subscribe("feed");
  ctx.live.subscribe("notifications");
  ctx.live.start();
  refreshNotifications();
  route();
}

function renderNav() {
  clear(nav);
  if (!api.me) return;
  nav.append(
    h("a", { href: "#/" }, "Home"),
    h("a", { href: "#/search" }, "Search"),
    h(
      "a",
      { href: "#/notifications", id: "notifications-link" },
      "Notifications ",
      h("span", { id: "unread", class: "badge", hidden: true, "aria-label": "0 unread" }, "0"),
    ),
    h("a", { href: `#/users/${api.me.id}` }, "Profile"),
    h("button", { type: "button", onclick: () => api.logout() }, "Log out"),
  );
  setUnread(unread);
}

// --- routing ----------------------------------------------------------------------------

function route() {
  const path = location.hash.replace(/^#/, "") || "/";
  current?.destroy?.();
  current = null;
  ctx.notify("");
  clear(main);
  if (!api.me) {
    current = path === "/register" ? registerScreen() : loginScreen();
  } else if (path === "/" || path === "/login" || path === "/register") {
    current = homeScreen();
  } else if (path.startsWith("/users/")) {
    current = profileScreen(path.slice("/users/".length));
  } else if (path === "/notifications") {
    current = notificationsScreen();
  } else if (path.startsWith("/search")) {
    current = searchScreen(new URLSearchParams(path.split("?")[1] || ""));
  } else {
    current = homeScreen();
  }
  for (const a of nav.querySelectorAll("a")) {
    if (a.getAttribute("href") === `#${path}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function screen(title, ...children) {
  document.title = `${title} · Plaza`;
  main.append(h("h1", {}, title), ...children);
}

// --- screens ----------------------------------------------------------------------------

// A form that signs the user in: `submit` does its REST calls, then the home feed opens.
function signInForm(submit, ...children) {
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        await busy(form, async () => {
          await submit();
          location.hash = "#/";
          signedIn();
        });
      },
    },
    ...children,
  );
  return form;
}

function loginScreen() {
  const login = h("input", { id: "login", name: "login", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const form = signInForm(
    () => api.login(login.value.trim(), password.value),
    h("label", { for: "login" }, "Email or username"),
    login,
    h("label", { for: "password" }, "Password"),
    password,
    h("button", { type: "submit" }, "Log in"),
    h("p", {}, "New here? ", h("a", { href: "#/register" }, "Create an account")),
  );
  screen("Log in", form);
  login.focus();
  return {};
}

function registerScreen() {
  const username = h("input", { id: "username", autocomplete: "username", required: true, pattern: "[a-z0-9_]{3,30}" });
  const email = h("input", { id: "email", type: "email", autocomplete: "email", required: true });
  const password = h("input", {
    id: "new-password",
    type: "password",
    autocomplete: "new-password",
    required: true,
    minlength: "8",
  });
  const form = signInForm(
    async () => {
      await api.register(username.value.trim(), email.value.trim(), password.value);
      await api.login(username.value.trim(), password.value);
    },
    h("label", { for: "username" }, "Username"),
    username,
    h("small", {}, "3–30 characters: a–z, 0–9 and _"),
    h("label", { for: "email" }, "Email"),
    email,
    h("label", { for: "new-password" }, "Password"),
    password,
    h("button", { type: "submit" }, "Create account"),
    h("p", {}, "Have an account? ", h("a", { href: "#/login" }, "Log in")),
  );
  screen("Create an account", form);
  username.focus();
  return {};
}

function homeScreen() {
  screen("Home", composer(), home.root);
  if (home.next === undefined) home.loadMore();
  return {};
}

function composer() {
  const text = h("textarea", { id: "compose", rows: "3", maxlength: "500", required: true });
  const file = h("input", { id: "compose-image", type: "file", accept: "image/png,image/jpeg,image/webp,image/gif" });
  const preview = h("span", { class: "preview" });
  file.addEventListener("change", () => {
    preview.textContent = file.files[0] ? file.files[0].name : "";
  });
  // One key per draft: a retry after a lost reply cannot post twice.
  let key = crypto.randomUUID();
  const form = h(
    "form",
    {
      class: "composer card",
      onsubmit: async (event) => {
        event.preventDefault();
        const content = text.value.trim();
        if (!content) return;
        await busy(form, async () => {
          const mediaIds = [];
          if (file.files[0]) mediaIds.push((await api.upload(file.files[0])).id);
          const post = await api.request("POST", "/posts", {
            json: { content, media_ids: mediaIds },
            headers: { "Idempotency-Key": key },
          });
          home.upsert(post);
          text.value = "";
          file.value = "";
          preview.textContent = "";
          key = crypto.randomUUID();
        });
        text.focus();
      },
    },
    h("label", { for: "compose" }, "New post"),
    text,
    h("div", { class: "row" }, h("label", { for: "compose-image", class: "file" }, "Add image"), file, preview),
    h("button", { type: "submit" }, "Post"),
  );
  return form;
}

function profileScreen(userId) {
  const head = h("div", { class: "card profile" });
  const list = new PostList(ctx, {
    label: "Posts",
    firstPage: `/users/${userId}/posts?limit=20`,
    livePosts: LIVE_POSTS,
  });
  ctx.lists.add(list);
  const channel = `user:${userId}`;
  screen("Profile", head, list.root);
  (async () => {
    try {
      const user = await api.get(`/users/${userId}`);
      document.title = `${displayName(user)} · Plaza`;
      main.querySelector("h1").textContent = displayName(user);
      list.el.setAttribute("aria-label", `Posts by ${displayName(user)}`);
      head.append(h("p", { class: "handle" }, `@${user.username}`), h("p", {}, user.bio || ""));
      if (user.id !== api.me.id) {
        const rel = await api.get(`/users/${userId}/relationship`);
        head.append(followButton(user, rel));
      }
    } catch (error) {
      ctx.notify(error.message);
    }
  })();
  list.loadMore();
  ctx.live.subscribe(channel);
  return {
    onEvent(ch, event) {
      if (ch !== channel) return;
      if (event.type === "post.created") list.upsert(event.data, { fromPush: true });
      else if (event.type === "post.deleted") list.remove(event.data.post_id);
    },
    onResync: (ch) => (ch === channel ? list.refresh() : undefined),
    destroy() {
      ctx.live.unsubscribe(channel);
      list.destroy();
      ctx.lists.delete(list);
    },
  };
}

function followButton(user, rel) {
  let following = rel.following;
  const button = h("button", { type: "button", class: "follow" });
  const show = () => {
    button.textContent = following ? "Unfollow" : "Follow";
    button.setAttribute("aria-label", `${following ? "Unfollow" : "Follow"} ${user.username}`);
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const next = await api.request(following ? "DELETE" : "POST", `/users/${user.id}/follow`);
      following = next.following;
      show();
      // Their posts join (or leave) the home feed.
      home.reset();
    } catch (error) {
      ctx.notify(error.message);
    } finally {
      button.disabled = false;
    }
  });
  show();
  return button;
}

const NOTIFICATION_TEXT = {
  like: "liked your post",
  comment: "commented on your post",
  follow: "followed you",
};

function notificationsScreen() {
  const list = h("ol", { class: "notifications card", "aria-label": "Notifications" });
  const shown = new Map();
  const more = h("button", { type: "button", hidden: true }, "Older notifications");
  let next = `/users/${api.me.id}/notifications?limit=20`;
  screen("Notifications", list, more);

  const add = (n) => {
    if (shown.has(n.id)) return;
    const el = h(
      "li",
      { class: n.read ? "read" : "unread" },
      h("a", { href: `#/users/${n.actor.id}` }, displayName(n.actor)),
      ` ${NOTIFICATION_TEXT[n.kind] || n.kind} · `,
      h("time", { datetime: n.created_at }, formatTime(n.created_at)),
    );
    shown.set(n.id, el);
    const older = [...shown.keys()].sort(compareIds).reverse().find((id) => compareIds(id, n.id) < 0);
    list.insertBefore(el, older ? shown.get(older) : null);
  };
  const markRead = async () => {
    const newest = [...shown.keys()].sort(compareIds).at(-1);
    if (newest === undefined || unread === 0) return;
    try {
      const { count } = await api.request("POST", "/notifications/read", { json: { up_to_id: newest } });
      setUnread(count);
    } catch (error) {
      ctx.notify(error.message);
    }
  };
  const load = async (path) => {
    try {
      const page = await api.page(path);
      page.items.forEach(add);
      next = page.next;
      more.hidden = next === null;
      if (shown.size === 0 && !list.querySelector(".empty")) {
        list.append(h("li", { class: "empty" }, "No notifications yet."));
      }
      await markRead();
    } catch (error) {
      ctx.notify(error.message);
    }
  };
  more.addEventListener("click", () => next && load(next));
  load(next);
  return {
    onNotification(n) {
      list.querySelector(".empty")?.remove();
      add(n);
      markRead();
    },
    onNotificationsResync: () => load(`/users/${api.me.id}/notifications?limit=20`),
  };
}

function searchScreen(params) {
  const q = h("input", { id: "q", type: "search", name: "q", required: true, maxlength: "100", value: params.get("q") || "" });
  const type = h(
    "select",
    { id: "type", name: "type" },
    h("option", { value: "posts" }, "Posts"),
    h("option", { value: "users" }, "Users"),
  );
  type.value = params.get("type") === "users" ? "users" : "posts";
  const results = h("div", { class: "results" });
  const form = h(
    "form",
    {
      role: "search",
      class: "card search",
      onsubmit: (event) => {
        event.preventDefault();
        const query = new URLSearchParams({ q: q.value.trim(), type: type.value });
        location.hash = `#/search?${query}`;
      },
    },
    h("label", { for: "q" }, "Search"),
    q,
    h("label", { for: "type" }, "Search in"),
    type,
    h("button", { type: "submit" }, "Search"),
  );
  screen("Search", form, results);
  let list = null;
  const query = (params.get("q") || "").trim();
  if (query) {
    const path = `/search?${new URLSearchParams({ q: query, type: type.value, limit: "20" })}`;
    if (type.value === "posts") {
      list = new PostList(ctx, { label: "Posts found", firstPage: path });
      ctx.lists.add(list);
      results.append(list.root);
      list.loadMore();
    } else {
      const users = h("ul", { class: "users card", "aria-label": "Users found" });
      results.append(users);
      api
        .page(path)
        .then(({ items }) => {
          if (!items.length) users.append(h("li", { class: "empty" }, "No users found."));
          for (const u of items) {
            users.append(
              h("li", {}, h("a", { href: `#/users/${u.id}` }, displayName(u)), " ", h("span", { class: "handle" }, `@${u.username}`)),
            );
          }
        })
        .catch((error) => ctx.notify(error.message));
    }
  } else {
    q.focus();
  }
  return {
    destroy() {
      if (list) {
        list.destroy();
        ctx.lists.delete(list);
      }
    },
  };
}

// Runs a form's action with its controls disabled; errors are shown, not thrown.
async function busy(form, action) {
  const controls = form.querySelectorAll("button, input, textarea, select");
  controls.forEach((c) => {
    c.disabled = true;
  });
  try {
    ctx.notify("");
    await action();
  } catch (error) {
    ctx.notify(error.message);
  } finally {
    controls.forEach((c) => {
      c.disabled = false;
    });
  }
}

start();
