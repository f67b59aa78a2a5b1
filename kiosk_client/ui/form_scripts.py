"""The scripts the kiosk runs inside the form view, to keep citizen-only fields from the clerk.

All but one run in Chromium's isolated application world: the page's own scripts can neither see nor
patch them, and they share the DOM (not JS objects) with the page. Each frame keeps its own memory of
every element that was ever citizen-only (`__kioskCitizenOnly`), so a "show password" toggle
(type=password → text) never makes a field fair game for the clerk; the top frame reads the memory of
same-origin frames through `contentWindow` (same world, same origin).

Shadow DOM: an isolated world sees into open shadow roots only. The one main-world script turns every
`attachShadow({mode: "closed"})` of the page into an open root (closed roots are an encapsulation
convenience for a page's components, not a security boundary; the page still gets its root back).
Declarative closed roots (`<template shadowrootmode="closed">`) cannot be reached at all: a custom
element that renders what cannot be seen into is masked whole, and while one that may hide such a
root has focus, it refuses the clerk's keys and text.
"""

from __future__ import annotations

import json
import re

ALWAYS_CITIZEN_ONLY = ("input[type=password]",)

# Main world, at document creation, in every frame: before any script of the page can keep a closed root.
OPEN_SHADOW_ROOTS = """(() => {
  const original = Element.prototype.attachShadow;
  if (original.__kioskOpened) return;
  const opened = function attachShadow(init) {
    const root = original.call(this, Object.assign({}, init, {mode: "open"}));
    // Tells the isolated world at once (events cross worlds), so it watches the root before the
    // page fills it: a password created and then shown as text is still remembered.
    if (this.isConnected) this.dispatchEvent(new Event("kiosk-shadow-root", {bubbles: true, composed: true}));
    return root;
  };
  opened.__kioskOpened = true;
  Object.defineProperty(Element.prototype, "attachShadow", {value: opened, writable: true, configurable: true});
})()"""

# Shared by the scripts below: walks one frame (its document and every shadow root inside it),
# remembering citizen-only fields and watching each root for fields changing their type later.
_WALK = """
  // A custom element showing no shadow root may hold a closed declarative one. (A div or a span may
  // too, but a focused one is far more often a page's own widget, which the clerk must be able to
  // drive with keys.)
  const mayHideShadow = (el) => !el.shadowRoot && el.localName.includes("-");
  const memoryOf = (win) => {
    if (!win.__kioskCitizenOnly) win.__kioskCitizenOnly = new Set();
    return win.__kioskCitizenOnly;
  };
  const rootsOf = (doc, hosts) => {
    const roots = [doc];
    for (let i = 0; i < roots.length && roots.length < 2000; i++)
      for (const el of roots[i].querySelectorAll("*")) {
        if (el.shadowRoot) roots.push(el.shadowRoot);
        else if (hosts && mayHideShadow(el) && el.localName !== "kiosk-stamp") hosts.push(el);
      }
    return roots;
  };
  // Renders a shadow tree nobody can see into: it has a box but nothing of its own to fill it (a
  // declarative closed root's template is gone from the DOM), or it has children but none of them is
  // rendered (children of a host are drawn only where its shadow tree puts them).
  const opaque = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0) return false;
    const children = [...el.children];
    if (!children.length) return !(el.textContent || "").trim();
    return children.every((c) => c.getClientRects().length === 0 && c.ownerDocument.defaultView.getComputedStyle(c).display !== "none");
  };
  // The walk is redone only when the frame's watch saw a change (an element added or removed, an
  // attribute a selector depends on, a new shadow root): measuring runs in every animation frame,
  // and walking a big page every 16 ms slowed the page (and the clerk's input) down. A frame with
  // no watch of its own is walked every time.
  const remember = (doc, win) => {
    const cached = win.__kioskWalk;
    if (cached && cached.doc === doc && win.__kioskDirty === false) return cached;
    if (win.__kioskObserve) win.__kioskDirty = false;  // first: a change during the walk marks it again
    const memory = memoryOf(win);
    const hosts = [];
    const roots = rootsOf(doc, hosts);
    const frames = [];
    for (const root of roots) {
      if (win.__kioskObserve) win.__kioskObserve(root);
      for (const s of selectors) {
        let list;
        try { list = root.querySelectorAll(s); } catch (e) { continue; }
        for (const el of list) memory.add(el);
      }
      for (const frame of root.querySelectorAll("iframe, frame, object, embed")) frames.push(frame);
    }
    for (const el of memory) if (!el.isConnected) memory.delete(el);
    win.__kioskWalk = {doc, memory, roots, frames, hosts};
    return win.__kioskWalk;
  };
"""

# Isolated world, at document creation, in every frame: remembers each citizen-only field as the
# parser inserts it, and any element whose type attribute *was* password, before the page's own
# scripts can change it. Shadow roots are added to the watch as the walk above finds them.
WATCH = """(() => {
  const selectors = %s, attributes = %s;
  const memory = (globalThis.__kioskCitizenOnly = globalThis.__kioskCitizenOnly || new Set());
  globalThis.__kioskDirty = true;
  const watched = new WeakSet();
  const check = (node) => {
    if (node.nodeType !== 1 && node.nodeType !== 11) return;
    for (const s of selectors) {
      try {
        if (node.nodeType === 1 && node.matches(s)) memory.add(node);
        for (const el of node.querySelectorAll(s)) memory.add(el);
      } catch (e) { /* an invalid selector from config matches nothing */ }
    }
    // Shadow roots come in with their hosts (open ones; closed ones are opened in the main world).
    const hosts = node.nodeType === 1 && node.shadowRoot ? [node] : [];
    for (const el of node.querySelectorAll("*")) if (el.shadowRoot) hosts.push(el);
    for (const host of hosts) {
      if (watched.has(host.shadowRoot)) continue;
      globalThis.__kioskObserve(host.shadowRoot);
      check(host.shadowRoot);
    }
  };
  const observer = new MutationObserver((records) => {
    globalThis.__kioskDirty = true;
    for (const r of records) {
      if (r.type === "attributes") {
        if (r.attributeName === "type" && String(r.oldValue).toLowerCase() === "password") memory.add(r.target);
        for (const s of selectors) { try { if (r.target.matches(s)) memory.add(r.target); } catch (e) {} }
      } else {
        r.addedNodes.forEach(check);
      }
    }
  });
  globalThis.__kioskObserve = (root) => {
    if (watched.has(root)) return;
    watched.add(root);
    observer.observe(root, {subtree: true, childList: true, attributes: true, attributeOldValue: true,
                            attributeFilter: attributes});
  };
  globalThis.__kioskObserve(document);
  window.addEventListener("kiosk-shadow-root", (event) => {
    const host = event.composedPath()[0];
    globalThis.__kioskDirty = true;
    if (host && host.shadowRoot) check(host);
  }, {capture: true});
  // Wheel scrolling, the clerk's and a mouse's, is done here on the page's main thread, where the
  // masks are measured: Chromium's compositor would scroll the picture ahead of the layout (and of
  // the masks) by a frame or more. Pages that handle the wheel themselves are left to do so.
  const scrolled = (chain, dx, dy) => {
    for (const el of chain) {
      if (!el) continue;
      const doc = el.ownerDocument;
      const root = el === doc.scrollingElement;
      const style = root ? null : doc.defaultView.getComputedStyle(el);
      const scrollsY = root || /(auto|scroll)/.test(style.overflowY);
      const scrollsX = root || /(auto|scroll)/.test(style.overflowX);
      const canY = scrollsY && (dy < 0 ? el.scrollTop > 0 : el.scrollTop + el.clientHeight < el.scrollHeight - 1);
      const canX = scrollsX && (dx < 0 ? el.scrollLeft > 0 : el.scrollLeft + el.clientWidth < el.scrollWidth - 1);
      if ((dy && canY) || (dx && canX)) {
        el.scrollBy({left: canX ? dx : 0, top: canY ? dy : 0, behavior: "instant"});
        return true;
      }
    }
    return false;
  };
  const ancestors = (el) => {
    const chain = [];
    for (let n = el; n; n = n.parentElement || (n.getRootNode() && n.getRootNode().host) || null) chain.push(n);
    return chain;
  };
  window.addEventListener("wheel", (event) => {
    if (event.defaultPrevented || event.ctrlKey) return;
    const unit = event.deltaMode === 1 ? 40 : event.deltaMode === 2 ? innerHeight : 1;
    const dx = event.deltaX * unit, dy = event.deltaY * unit;
    let chain = [...event.composedPath().filter((n) => n.nodeType === 1), document.scrollingElement];
    for (let win = window; win; ) {
      if (scrolled(chain, dx, dy)) { event.preventDefault(); return; }
      // Nothing here scrolls: the scroll would chain to the parent frame, by the compositor again.
      let frame = null;
      try { frame = win.frameElement; } catch (e) { frame = null; }
      if (!frame) return;  // the top, or a cross-origin parent: the stamp catches what follows
      win = frame.ownerDocument.defaultView;
      chain = [...ancestors(frame), frame.ownerDocument.scrollingElement];
    }
  }, {passive: false, capture: false});
})()"""

# Isolated world, at document creation, in every frame: the fence that orders the clerk's inputs.
# Chromium runs a script the kiosk sends and the key and mouse events it sends on separate queues,
# so a check of the focused field could run before a Tab or a click sent just before it had moved
# the focus (and the clerk's next text then landed in the password field the check never saw). Before
# each check the kiosk sends a fence through the input queue itself: keys F13-F22 for the digits of
# its number, then F24. Once the fence's number is here, every input sent before it has been handled.
# The page never sees these keys; a frame writes the number into the top frame's state too (same
# world, same origin), since the focused field may be in a same-origin frame.
INPUT_FENCE = """(() => {
  if (globalThis.__kioskFence) return;
  const state = (globalThis.__kioskFence = {digits: "", last: -1});
  const fenceKey = /^F(1[3-9]|2[0-4])$/;
  const on = (event) => {
    if (!event.isTrusted || !fenceKey.test(event.key)) return;
    event.stopImmediatePropagation();
    event.preventDefault();
    if (event.type !== "keydown") return;
    const n = Number(event.key.slice(1));
    if (n <= 22) { state.digits = (state.digits + String(n - 13)).slice(-4); return; }
    if (n !== 24) return;
    const number = state.digits.length === 4 ? Number(state.digits) : -1;
    state.digits = "";
    state.last = number;
    let top = null;
    try { top = window.top.__kioskFence || null; } catch (e) { top = null; }
    if (top && top !== state) top.last = number;
  };
  for (const type of ["keydown", "keypress", "keyup"]) window.addEventListener(type, on, true);
})()"""

# Isolated world, top frame: answers whether the focused element (through shadow roots and
# same-origin frames) is citizen-only: "ok", "citizen_only", or "unknown" when it cannot be told
# (a cross-origin frame, an element that may host a closed declarative shadow root), or "pending"
# while the fence numbered `FENCE` (replaced at each check) has not arrived yet.
FOCUS_GUARD = (
    """(() => {
  const selectors = %s;
  const fence = globalThis.__kioskFence, expected = FENCE;
"""
    + _WALK
    + """
  const editable = (el) => el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName);
  let el = document.activeElement;
  for (let depth = 0; el && depth < 32; depth++) {
    if (el.shadowRoot) {
      if (!el.shadowRoot.activeElement) break;
      el = el.shadowRoot.activeElement;
      continue;
    }
    if (el.tagName === "IFRAME" || el.tagName === "FRAME") {
      let inner;
      try { inner = el.contentDocument && el.contentDocument.activeElement; } catch (e) { return "unknown"; }
      if (!inner) return "unknown";
      el = inner;
      continue;
    }
    break;
  }
  // Focus in a cross-origin frame returned "unknown" above (its frame keeps the fence to itself).
  if (fence && fence.last !== expected) return "pending";
  if (!el || !el.matches) return "ok";
  const doc = el.ownerDocument, win = doc.defaultView;
  if (!win) return "unknown";
  const {memory} = remember(doc, win);
  if (memory.has(el)) return "citizen_only";
  try { if (selectors.some((s) => el.matches(s))) return "citizen_only"; } catch (e) { return "citizen_only"; }
  if (el === doc.body || el === doc.documentElement || editable(el)) return "ok";
  // Focus rests on an element that may hold a closed declarative shadow root: the focused field
  // inside it (if any) cannot be seen, so it cannot be proven not to be a password.
  return mayHideShadow(el) ? "unknown" : "ok";
})()"""
)

# Isolated world, top frame, called at each tick of the streamer. Keeps a measurement running in every
# animation frame of the page (for a second after the last call), and returns the measurements done
# since the last call. A measurement finds, in every frame and shadow root, the rectangles to mask
# (citizen-only fields, cross-origin frames not declared safe, a focused element that may hide a
# closed root); when they differ from the previous frame's, it paints a new token into the stamp, a
# strip of two rows of eight coloured cells in the corner, in the top layer. The token is painted in the same
# animation frame as the layout it was measured on, so a grab that shows a token shows a layout
# whose masks are that token's: the streamer masks a grab only with the rectangles of the token it
# shows, and drops grabs whose token it does not know.
MEASURE = (
    """(() => {
  const selectors = %s, safeOrigins = %s;
  const state = (globalThis.__kioskMeasures = globalThis.__kioskMeasures ||
    {token: 1 + Math.floor(Math.random() * 0xfffff0), done: [], running: false, polled: 0, tops: -1,
     stamp: null, cells: [], last: ""});
"""
    + _WALK
    + """
  const box = (r, ox, oy) => [ox + r.left, oy + r.top, r.width, r.height];
  const visible = (r) => r.width > 0 && r.height > 0;
  const clip = (rect, area) => {
    if (!area) return rect;
    const x = Math.max(rect[0], area[0]), y = Math.max(rect[1], area[1]);
    const right = Math.min(rect[0] + rect[2], area[0] + area[2]), bottom = Math.min(rect[1] + rect[3], area[1] + area[3]);
    return right > x && bottom > y ? [x, y, right - x, bottom - y] : null;
  };
  // What an opaque host draws can overflow its own box (an inline host around a tall field): its
  // extent is found by hit-testing outwards from the box until the points no longer land on it.
  const drawnExtent = (host, doc) => {
    const r = host.getBoundingClientRect();
    const on = (x, y) => {
      const hit = doc.elementFromPoint(x, y);
      return hit === host || (hit !== null && host.contains(hit));
    };
    let [top, bottom, left, right] = [r.top, r.bottom, r.left, r.right];
    const xs = [r.left + 1, (r.left + r.right) / 2, r.right - 1], ys = [r.top + 1, (r.top + r.bottom) / 2, r.bottom - 1];
    for (let step = 0; step < 64 && xs.some((x) => on(x, bottom + 1)); step++) bottom += 4;
    for (let step = 0; step < 64 && xs.some((x) => on(x, top - 1)); step++) top -= 4;
    for (let step = 0; step < 64 && ys.some((y) => on(right + 1, y)); step++) right += 4;
    for (let step = 0; step < 64 && ys.some((y) => on(left - 1, y)); step++) left -= 4;
    const slack = 8;  // the hit-tests run on a grid: a field's rounded corner or shadow may lie between
    return {left: left - slack, top: top - slack, width: right - left + 2 * slack, height: bottom - top + 2 * slack};
  };
  const measureFrame = (doc, win, ox, oy, area, out, depth) => {
    const {memory, frames, hosts} = remember(doc, win);
    for (const host of hosts) {
      if (!host.isConnected || !opaque(host)) continue;
      const rect = clip(box(drawnExtent(host, doc), ox, oy), area);
      if (rect) out.push(rect);
    }
    for (const el of memory) {
      for (const r of el.getClientRects()) {
        const rect = visible(r) && clip(box(r, ox, oy), area);
        if (rect) out.push(rect);
      }
    }
    for (const frame of frames) {
      const r = frame.getBoundingClientRect();
      if (!visible(r)) continue;
      let inner = null;
      try { inner = frame.contentDocument; } catch (e) { inner = null; }
      if (inner && inner.defaultView && depth < 8) {
        const style = win.getComputedStyle(frame);
        const x = ox + r.left + frame.clientLeft + parseFloat(style.paddingLeft || "0");
        const y = oy + r.top + frame.clientTop + parseFloat(style.paddingTop || "0");
        const inside = clip([x, y, frame.clientWidth, frame.clientHeight], area);
        if (inside) measureFrame(inner, inner.defaultView, x, y, inside, out, depth + 1);
        continue;
      }
      let origin = "";
      try { origin = new URL(frame.src || frame.data || "about:blank", frame.baseURI).origin; } catch (e) {}
      if (!safeOrigins.includes(origin) || depth >= 8) {
        const rect = clip(box(r, ox, oy), area);
        if (rect) out.push(rect);
      }
    }
    const focused = doc.activeElement;
    if (focused && focused !== doc.body && focused !== doc.documentElement && mayHideShadow(focused)) {
      const rect = clip(box(focused.getBoundingClientRect(), ox, oy), area);
      if (rect) out.push(rect);
    }
  };
  const stampOf = () => {
    if (state.stamp && state.stamp.isConnected) return state.stamp;
    const host = document.createElement("kiosk-stamp");
    host.setAttribute("popover", "manual");
    // In the top layer (above the page's own dialogs), absolutely positioned: its containing block is
    // then the document's, so a scroll of the page that the compositor shows before the page's main
    // thread knows of it moves the stamp too, and the grab is dropped instead of masked wrong.
    host.style.cssText = "all: initial; display: flex; flex-wrap: wrap; position: absolute; margin: 0;" +
      "padding: 0; border: 0; width: 24px; height: 2px; z-index: 2147483647; pointer-events: none;" +
      "overflow: hidden; background: black;";
    const root = host.attachShadow({mode: "closed"});
    state.cells = [];
    for (let i = 0; i < 16; i++) {
      const cell = document.createElement("div");
      cell.style.cssText = "width: 3px; height: 1px; flex: none;";
      root.appendChild(cell);
      state.cells.push(cell);
    }
    document.documentElement.appendChild(host);
    state.stamp = host;
    state.tops = -1;
    return host;
  };
  const onTop = (host) => {
    // The top layer paints in the order things entered it: a modal dialog opened after the stamp
    // would cover it (and every grab would be dropped), so the stamp goes back on top. Looked at
    // every eighth frame: the query runs over the whole document.
    state.frame = (state.frame || 0) + 1;
    if ((state.frame & 7) !== 1 && host.matches(":popover-open")) return;
    const others = document.querySelectorAll(":modal, :popover-open:not(kiosk-stamp)").length;
    if (others === state.tops && host.matches(":popover-open")) return;
    try { if (host.matches(":popover-open")) host.hidePopover(); host.showPopover(); } catch (e) {}
    state.tops = others;
  };
  const measure = () => {
    if (!document.documentElement) return;
    const out = [];
    measureFrame(document, window, 0, 0, null, out, 0);
    const host = stampOf();
    onTop(host);
    const viewport = document.documentElement;
    const left = `${scrollX + viewport.clientWidth - 24}px`, top = `${scrollY + viewport.clientHeight - 2}px`;
    if (host.style.left !== left) host.style.left = left;
    if (host.style.top !== top) host.style.top = top;
    const s = host.getBoundingClientRect();
    const key = JSON.stringify([out, [s.left, s.top, s.width, s.height]]);
    if (key === state.last && state.cells.length) return;  // same masks: the painted token still holds
    state.last = key;
    state.token = state.token >= 0xfffffe ? 1 : state.token + 1;
    // Top row: the token, three bits a cell; bottom row: its complement. A stamp read one row off
    // (a scroll the compositor showed first) reads as garbage, never as a token.
    for (let i = 0; i < 16; i++) {
      const bits = ((i < 8 ? state.token : ~state.token) >> (3 * (i & 7))) & 7;
      state.cells[i].style.background = `rgb(${bits & 4 ? 255 : 0}, ${bits & 2 ? 255 : 0}, ${bits & 1 ? 255 : 0})`;
    }
    state.done.push({token: state.token, rects: out, stamp: [s.left, s.top, s.width, s.height]});
    if (state.done.length > 64) state.done.shift();
  };
  const loop = () => {
    if (performance.now() - state.polled > 1000) {
      // Nobody streams any more: stop measuring, and blank the stamp (token 0 is never valid), since
      // from now on the layout can change without a new token.
      state.running = false;
      for (const cell of state.cells) cell.style.background = "black";
      return;
    }
    try { measure(); } finally { requestAnimationFrame(loop); }
  };
  state.polled = performance.now();
  if (!state.running) {
    state.running = true;
    state.last = "";  // a restarted loop repaints the stamp before any grab can be trusted
    requestAnimationFrame(loop);
  }
  const done = state.done;
  state.done = [];
  return JSON.stringify({measures: done, dpr: devicePixelRatio});
})()"""
)


def with_selectors(script: str, selectors: tuple[str, ...], *more: object) -> str:
    return script % (json.dumps([*ALWAYS_CITIZEN_ONLY, *selectors]), *(json.dumps(m) for m in more))


def watched_attributes(selectors: tuple[str, ...]) -> list[str]:
    """The attributes whose changes may make an element citizen-only: those the selectors name, and
    those a page changes to turn a field into another (a "show password" toggle changes `type`)."""
    named = {name.lower() for s in selectors for name in re.findall(r"\[\s*([-\w]+)", s)}
    return sorted({"type", "id", "class", "name", "autocomplete", *named})


# Isolated world, top frame, when the citizen's keyboard opens: brings the focused field to the middle
# of what is left of the view, through shadow roots and same-origin frames (a cross-origin frame is
# brought into view as a whole; its page keeps its own field in view).
REVEAL_FOCUSED = """(() => {
  let el = document.activeElement, last = null;
  for (let depth = 0; el && depth < 32; depth++) {
    last = el;
    if (el.shadowRoot && el.shadowRoot.activeElement) { el = el.shadowRoot.activeElement; continue; }
    if (el.tagName === "IFRAME" || el.tagName === "FRAME") {
      let inner = null;
      try { inner = el.contentDocument && el.contentDocument.activeElement; } catch (e) { inner = null; }
      if (inner && inner !== el.contentDocument.body) { el = inner; continue; }
    }
    break;
  }
  if (!last || last === document.body || last === document.documentElement) return false;
  last.scrollIntoView({block: "center", inline: "nearest"});
  return true;
})()"""

# Whether the page shows anything of the site (run after a failed load, to tell a page that kept its
# content — a refused navigation, a failed link — from one left empty): "content", "empty" (no body,
# nothing in it) or "error" (Chromium's own error page, which is not the site).
PAGE_CONTENT = """(() => {
  if (location.protocol === "chrome-error:") return "error";
  const body = document.body;
  if (!body) return "empty";
  if ((body.innerText || "").trim()) return "content";
  return body.querySelector("img, svg, canvas, video, input, select, textarea, button, iframe, object, embed")
    ? "content" : "empty";
})()"""
