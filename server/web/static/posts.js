// A list of posts shown newest first, each at most once (keyed by id), with infinite
// scroll; and the article of one post with its like button and comment thread.

import { compareIds, displayName, formatTime, h } from "./dom.js";

export class PostList {
  // ctx: {api, live, notify, threads, postChanged}; firstPage: the REST path of the
  // newest page (older pages follow its Link header). livePosts: how many of the newest posts follow their likes and comments live (each
  // is a post:{id} channel, and a socket holds at most 128).
  constructor(ctx, { label, firstPage, livePosts = 0 }) {
    this.ctx = ctx;
    this.firstPage = firstPage;
    this.livePosts = livePosts;
    this.live = new Set();
    this.posts = new Map(); // id -> {post, view, seq}
    this.seq = 0; // counts upserts: what arrived after a refresh began is newer than it
    this.next = undefined; // path of the older page; null: no more
    this.loading = false;
    this.el = h("div", { role: "feed", "aria-label": label, "aria-busy": "false", class: "feed" });
    this.empty = h("p", { class: "empty" }, "Nothing here yet.");
    this.sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
    this.root = h("section", { class: "post-list" }, this.el, this.empty, this.sentinel);
    // The next page is asked for a little before the end of the list comes into view.
    this.observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) this.loadMore();
      },
      { rootMargin: "0px 0px 400px 0px" },
    );
    this.observer.observe(this.sentinel);
  }

  ids() {
    return [...this.posts.keys()].sort(compareIds).reverse();
  }

  async loadMore() {
    if (this.loading || this.next === null) return;
    this.loading = true;
    this.el.setAttribute("aria-busy", "true");
    try {
      const page = await this.ctx.api.page(this.next === undefined ? this.firstPage : this.next);
      for (const post of page.items) this.upsert(post);
      this.next = page.next;
    } catch (error) {
      this.ctx.notify(error.message);
    } finally {
      this.loading = false;
      this.el.setAttribute("aria-busy", "false");
      this.update();
    }
    // Still on screen (a short page, a tall window): go on.
    if (this.next !== null && isVisible(this.sentinel)) this.loadMore();
  }

  // After a gap (recovered: false): the first page again, merged. Posts inside its range
  // that it no longer holds were deleted; older pages stay as they are, unless the fresh
  // page does not reach them (then what lies between is unknown, and they go).
  async refresh() {
    const began = this.seq;
    let page;
    try {
      page = await this.ctx.api.page(this.firstPage);
    } catch (error) {
      this.ctx.notify(error.message);
      return new Set();
    }
    const fresh = new Set(page.items.map((p) => p.id));
    // A post pushed while the page was on its way is not gone because the page misses it.
    const held = this.ids().filter((id) => this.posts.get(id).seq <= began);
    const oldest = page.items.at(-1)?.id;
    if (!page.next) {
      for (const id of held) if (!fresh.has(id)) this.remove(id);
      this.next = null;
    } else if (held.length === 0 || compareIds(oldest, held[0]) > 0) {
      for (const id of held) this.remove(id);
      this.next = page.next;
    } else {
      for (const id of held) if (!fresh.has(id) && compareIds(id, oldest) >= 0) this.remove(id);
      if (!held.some((id) => compareIds(id, oldest) < 0)) this.next = page.next;
    }
    for (const post of page.items) this.upsert(post);
    this.update();
    return fresh;
  }

  // A different list (a follow or an unfollow changes the whole feed): start over.
  reset() {
    for (const id of this.ids()) this.remove(id);
    this.next = undefined;
    return this.loadMore();
  }

  upsert(post, { fromPush = false } = {}) {
    const known = this.posts.get(post.id);
    this.seq += 1;
    if (known) {
      // A pushed post says liked_by_me: false for everyone: keep what we know.
      const merged = fromPush ? { ...post, liked_by_me: known.post.liked_by_me } : post;
      known.post = merged;
      known.seq = this.seq;
      known.view.update(merged);
      return;
    }
    const view = new PostView(this.ctx, post);
    this.posts.set(post.id, { post, view, seq: this.seq });
    const older = this.ids().find((id) => compareIds(id, post.id) < 0);
    const before = older ? this.posts.get(older).view.el : null;
    this.el.insertBefore(view.el, before);
    this.update();
  }

  remove(id) {
    const known = this.posts.get(id);
    if (!known) return;
    known.view.close();
    known.view.el.remove();
    this.posts.delete(id);
    this.update();
  }

  // Like and comment counts from a post:{id} channel.
  patch(id, fields) {
    const known = this.posts.get(id);
    if (!known) return;
    known.post = { ...known.post, ...fields };
    known.view.update(known.post);
  }

  update() {
    const articles = this.el.querySelectorAll(":scope > article");
    articles.forEach((el, i) => {
      el.setAttribute("aria-posinset", String(i + 1));
      el.setAttribute("aria-setsize", this.next === null ? String(articles.length) : "-1");
    });
    this.empty.hidden = this.posts.size > 0 || this.next !== null;
    this.followNewest();
  }

  followNewest() {
    const newest = new Set(this.ids().slice(0, this.livePosts));
    for (const id of this.live) {
      if (!newest.has(id)) this.ctx.live.unsubscribe(`post:${id}`);
    }
    for (const id of newest) {
      if (!this.live.has(id)) this.ctx.live.subscribe(`post:${id}`);
    }
    this.live = newest;
  }

  destroy() {
    this.livePosts = 0;
    this.followNewest();
    this.observer.disconnect();
    for (const { view } of this.posts.values()) view.close();
  }
}

function isVisible(el) {
  if (!el.isConnected) return false;
  const rect = el.getBoundingClientRect();
  return rect.top < window.innerHeight + 400 && rect.bottom >= 0;
}

export class PostView {
  constructor(ctx, post) {
    this.ctx = ctx;
    this.post = post;
    this.thread = null;
    const titleId = `post-${post.id}-author`;
    this.likeButton = h("button", { type: "button", class: "like", onclick: () => this.toggleLike() }, "Like");
    this.likeCount = h("span", { class: "count" });
    this.commentButton = h(
      "button",
      { type: "button", class: "comments", "aria-expanded": "false", onclick: () => this.toggleThread() },
      "Comments",
    );
    this.commentCount = h("span", { class: "count" });
    this.threadEl = h("section", { class: "thread", hidden: true, "aria-label": "Comments" });
    const author = post.author;
    this.el = h(
      "article",
      { tabindex: "0", "aria-labelledby": titleId, dataset: { id: post.id } },
      h(
        "header",
        {},
        h("a", { href: `#/users/${author.id}`, id: titleId, class: "author" }, displayName(author)),
        " ",
        h("span", { class: "handle" }, `@${author.username}`),
        " · ",
        h("time", { datetime: post.created_at }, formatTime(post.created_at)),
      ),
      h("p", { class: "content" }, post.content),
      post.media.map((m) =>
        h("img", {
          src: m.url,
          alt: "Image attached to the post",
          width: m.width,
          height: m.height,
          loading: "lazy",
        }),
      ),
      h("footer", {}, this.likeButton, this.likeCount, this.commentButton, this.commentCount),
      this.threadEl,
    );
    this.update(post);
  }

  update(post) {
    this.post = post;
    this.likeButton.setAttribute("aria-pressed", String(post.liked_by_me));
    this.likeCount.textContent = `${post.like_count} ${post.like_count === 1 ? "like" : "likes"}`;
    this.commentCount.textContent = `${post.comment_count} ${post.comment_count === 1 ? "comment" : "comments"}`;
  }

  async toggleLike() {
    const liked = this.post.liked_by_me;
    this.likeButton.disabled = true;
    try {
      const post = await this.ctx.api.request(liked ? "DELETE" : "POST", `/posts/${this.post.id}/likes`);
      this.ctx.postChanged(post);
    } catch (error) {
      this.ctx.notify(error.message);
    } finally {
      this.likeButton.disabled = false;
    }
  }

  toggleThread() {
    if (this.thread) this.close();
    else this.open();
  }

  open() {
    this.thread = new Thread(this.ctx, this.post.id, this.threadEl);
    this.threadEl.hidden = false;
    this.commentButton.setAttribute("aria-expanded", "true");
  }

  close() {
    if (!this.thread) return;
    this.thread.close();
    this.thread = null;
    this.threadEl.hidden = true;
    this.commentButton.setAttribute("aria-expanded", "false");
  }
}

// The comments of one post, live while open (post:{id}).
class Thread {
  constructor(ctx, postId, el) {
    this.ctx = ctx;
    this.postId = postId;
    this.channel = `post:${postId}`;
    this.comments = new Map();
    this.list = h("ol", { class: "comment-list" });
    const input = h("input", { type: "text", maxlength: "500", required: true, "aria-label": "Comment" });
    const form = h(
      "form",
      {
        class: "comment-form",
        onsubmit: async (event) => {
          event.preventDefault();
          const content = input.value.trim();
          if (!content) return;
          input.disabled = true;
          try {
            const comment = await ctx.api.request("POST", `/posts/${postId}/comments`, { json: { content } });
            this.add(comment);
            input.value = "";
          } catch (error) {
            ctx.notify(error.message);
          } finally {
            input.disabled = false;
            input.focus();
          }
        },
      },
      input,
      h("button", { type: "submit" }, "Reply"),
    );
    el.replaceChildren(this.list, form);
    ctx.threads.set(this.channel, this);
    ctx.live.subscribe(this.channel);
    this.load();
  }

  async load() {
    try {
      const { items } = await this.ctx.api.page(`/posts/${this.postId}/comments?limit=40`);
      for (const comment of items) this.add(comment);
    } catch (error) {
      this.ctx.notify(error.message);
    }
  }

  add(comment) {
    if (this.comments.has(comment.id)) return;
    const el = h(
      "li",
      {},
      h("a", { href: `#/users/${comment.author.id}`, class: "author" }, displayName(comment.author)),
      " ",
      h("span", { class: "comment-text" }, comment.content),
    );
    this.comments.set(comment.id, el);
    // Oldest first, like a conversation.
    const newer = [...this.comments.keys()].sort(compareIds).find((id) => compareIds(id, comment.id) > 0);
    this.list.insertBefore(el, newer ? this.comments.get(newer) : null);
  }

  close() {
    this.ctx.threads.delete(this.channel);
    this.ctx.live.unsubscribe(this.channel);
  }
}
