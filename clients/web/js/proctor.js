// The proctor's and observer's dashboard: a live grid of a site's sittings, what needs attention
// first, a sitting's record, and the proctor's actions (docs/protocol.md section 7).
// Observers get the same view without any action: the server refuses them anyway (UA-15).

import { ServerClock } from "./clock.js";
import { $, $$, announce, el, formatDuration } from "./dom.js";
import { applyTranslations, initLanguage, onLanguageChange, setLanguage, t } from "./i18n.js";
import { StaffSocket } from "./staff-socket.js";

const AUTH_KEY = "examhall.staff";
const FINAL_STATES = new Set(["submitted", "expired", "terminated", "no-show"]);
const IRREVERSIBLE = new Set(["terminate", "no-show", "grant-time"]);
const SNAPSHOT_CONCURRENCY = 4;
const LIVE_LOG_LENGTH = 50;

const P = {
  auth: null,
  socket: null,
  tiles: new Map(), // sitting id -> tile from the feed, with its countdown (a ServerClock)
  cards: new Map(), // sitting id -> <li>
  order: [], // sitting ids as the grid shows them
  serverOffsetS: 0, // server clock minus this clock, from the latest feed
  detail: null, // sitting id shown in the detail dialog
  snapshots: new Map(), // sitting id -> {at, url}
  visible: new Set(),
  snapshotQueue: [],
  snapshotBusy: 0,
  lastAnnounced: 0,
  pendingAnnouncements: [],
};

// -- helpers ------------------------------------------------------------------------------------

function showScreen(name) {
  for (const section of $$("main > section")) section.hidden = section.id !== `screen-${name}`;
  document.body.dataset.screen = name;
  const heading = $(`#screen-${name} h1`);
  if (heading) {
    document.title = `${heading.textContent} — examhall`;
    heading.focus();
  }
}

function localized(map) {
  if (!map) return "";
  if (typeof map === "string") return map;
  return map[document.documentElement.lang] ?? Object.values(map)[0] ?? "";
}

function serverNow() {
  return Date.now() / 1000 + P.serverOffsetS;
}

function clockTime(epochSeconds) {
  if (!epochSeconds) return "";
  return new Intl.DateTimeFormat(document.documentElement.lang, {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).format(new Date((epochSeconds - P.serverOffsetS) * 1000));
}

function remainingMs(tile) {
  return tile.clock.remaining();
}

function irregularityName(kind) {
  return t(`proctor.irr.${kind}`, {}, kind);
}

function isClosed(tile) {
  return FINAL_STATES.has(tile.state);
}

// -- sign in ------------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const error = $("#signin-error");
  error.textContent = "";
  const login = $("#login").value.trim();
  const password = $("#password").value;
  if (!login || !password) {
    error.textContent = t("proctor.error.empty");
    (login ? $("#password") : $("#login")).focus();
    return;
  }
  const body = { login, password };
  const exam = $("#exam").value.trim();
  if (!$("#exam-field").hidden && exam) body.exam = exam;
  $("#signin-button").disabled = true;
  try {
    const response = await fetch("/api/v1/staff/signin", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const reply = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (reply.error === "which_exam") $("#exam-field").hidden = false;
      error.textContent = t(`proctor.error.${reply.error}`, {}, t("proctor.error.other"));
      return;
    }
    P.auth = reply;
    sessionStorage.setItem(AUTH_KEY, JSON.stringify(reply));
    startBoard();
  } catch {
    error.textContent = t("signin.error.network");
  } finally {
    $("#signin-button").disabled = false;
  }
}

function signOut() {
  P.socket?.close();
  sessionStorage.removeItem(AUTH_KEY);
  location.reload();
}

/** The sites of the sign-in reply as {id, title}; the protocol page lists plain ids. */
function authSites() {
  return (P.auth.sites ?? []).map((site) => (typeof site === "string" ? { id: site, title: null } : site));
}

// -- the board ----------------------------------------------------------------------------------

function startBoard() {
  const { name, role } = P.auth;
  $("#who").textContent = name;
  $("#who").hidden = false;
  $("#role").textContent = t(`proctor.role.${role}`, {}, role);
  $("#role").dataset.role = role;
  $("#role").hidden = false;
  $("#sign-out").hidden = false;
  $("#exam-title").textContent = localized(P.auth.exam?.title ?? P.auth.exam);
  document.body.classList.toggle("observer", role === "observer");
  $("#observer-note").hidden = role !== "observer";
  $("#actions").hidden = role === "observer";
  const sites = authSites();
  const picker = $("#site");
  picker.replaceChildren(
    ...(sites.length > 1 ? [el("option", { value: "", "data-i18n": "proctor.allSites" }, t("proctor.allSites"))] : []),
    ...sites.map((site) => el("option", { value: site.id }, localized(site.title) || site.id)),
  );
  $("#site-picker").hidden = sites.length <= 1;
  showScreen("board");
  connect(sites.length === 1 ? sites[0].id : null);
}

function connect(site) {
  P.socket?.close();
  P.tiles.clear();
  for (const card of P.cards.values()) card.remove();
  P.cards.clear();
  P.order = [];
  P.socket = new StaffSocket({ token: P.auth.token, site });
  P.socket.addEventListener("message", (event) => onMessage(event.detail));
  P.socket.addEventListener("status", (event) => onConnection(event.detail));
  P.socket.connect();
}

function onConnection({ status, code }) {
  const net = $("#net");
  net.hidden = false;
  net.dataset.state = status;
  const key = { open: "connection.open", connecting: "connection.connecting", lost: "connection.lost", ended: "connection.ended" }[status];
  net.textContent =
    status === "open" && P.socket.roundTripMs !== null
      ? t("connection.openRtt", { ms: P.socket.roundTripMs })
      : t(key ?? "connection.connecting");
  if (status === "ended" && code !== 1000) {
    $("#ended-text").textContent = t(code === 4401 ? "proctor.ended.token" : code === 4403 ? "proctor.ended.forbidden" : "ended.other");
    showScreen("ended");
  }
}

function onMessage(message) {
  if (message.t === "feed") onFeed(message);
  else if (message.t === "irregularity") onIrregularity(message);
  else if (message.t === "error" && message.fatal) console.warn("proctor socket refused", message);
}

function onFeed(feed) {
  P.serverOffsetS = feed.server_time - Date.now() / 1000;
  if (feed.full) {
    const present = new Set(feed.tiles.map((tile) => tile.sitting));
    for (const [id, tile] of P.tiles) {
      if (tile.site === feed.site && !present.has(id)) {
        P.tiles.delete(id);
        P.cards.get(id)?.remove();
        P.cards.delete(id);
      }
    }
  }
  for (const tile of feed.tiles) {
    const before = P.tiles.get(tile.sitting);
    // The candidate's countdown as the candidate's page keeps it: a late frame does not raise it.
    tile.clock = before?.clock ?? new ServerClock();
    tile.clock.update(tile.remaining_ms, tile.state, 0, tile.deadline ?? null);
    P.tiles.set(tile.sitting, tile);
    renderCard(tile);
    if (before && before.attention < 3 && tile.attention >= 3) queueAnnouncement(tile);
    if (P.detail === tile.sitting) renderDetail();
  }
  arrange();
}

function onIrregularity(found) {
  const tile = P.tiles.get(found.sitting);
  const name = tile?.name ?? found.sitting;
  const entry = el(
    "li",
    { class: "log-entry" },
    el("time", {}, clockTime(found.at)),
    " ",
    el(
      "button",
      { type: "button", class: "link-button", onclick: () => openDetail(found.sitting) },
      name,
    ),
    " — ",
    el("strong", {}, irregularityName(found.kind)),
    found.detail ? el("span", { class: "hint", lang: "en" }, ` (${found.detail})`) : null,
  );
  const log = $("#live-log");
  log.prepend(entry);
  while (log.children.length > LIVE_LOG_LENGTH) log.lastElementChild.remove();
}

function queueAnnouncement(tile) {
  P.pendingAnnouncements.push(tile);
  // One sentence at most every few seconds: a room of alarms must not drown the screen reader.
  if (P.pendingAnnouncements.length === 1) setTimeout(flushAnnouncements, 1500);
}

function flushAnnouncements() {
  const tiles = P.pendingAnnouncements.splice(0);
  if (tiles.length === 1) {
    announce(t("proctor.announce.one", { name: tiles[0].name, what: attentionReason(tiles[0]) }));
  } else if (tiles.length > 1) {
    announce(t("proctor.announce.many", { count: tiles.length }));
  }
}

function attentionReason(tile) {
  if (!tile.connected && tile.state === "running") return t("proctor.disconnected");
  if (tile.last_irregularity) return irregularityName(tile.last_irregularity.kind);
  return t(`proctor.state.${tile.state}`, {}, tile.state);
}

// -- tiles --------------------------------------------------------------------------------------

function renderCard(tile) {
  let card = P.cards.get(tile.sitting);
  if (!card) {
    card = buildCard(tile);
    P.cards.set(tile.sitting, card);
  }
  fillCard(card, tile);
}

function buildCard(tile) {
  P.cardCounter = (P.cardCounter ?? 0) + 1;
  const nameId = `tile-${P.cardCounter}-name`;
  const card = el(
    "li",
    { class: "tile", dataset: { sitting: tile.sitting } },
    el(
      "article",
      { "aria-labelledby": nameId },
      el("p", { class: "tile-attention" }),
      el("div", { class: "tile-picture" }, el("img", { class: "tile-snapshot", alt: "", hidden: true }), el("p", { class: "no-snapshot" })),
      el("h2", { class: "tile-name", id: nameId }),
      el("p", { class: "tile-id" }),
      el("p", { class: "tile-state" }),
      el("p", { class: "tile-progress" }, el("progress", { max: 1, value: 0 }), el("span", {})),
      el("p", { class: "tile-time" }),
      el("p", { class: "tile-connection" }),
      el("p", { class: "tile-irregularities" }),
      el(
        "button",
        { type: "button", class: "button tile-open", onclick: () => openDetail(tile.sitting) },
        el("span", { class: "open-label" }),
        el("span", { class: "visually-hidden open-name" }),
      ),
    ),
  );
  P.visibility?.observe(card);
  return card;
}

function fillCard(card, tile) {
  card.dataset.attention = tile.attention;
  card.dataset.state = tile.state;
  card.dataset.connected = tile.connected;
  const set = (selector, text) => {
    const node = $(selector, card);
    if (node.textContent !== text) node.textContent = text;
  };
  set(".tile-attention", t(`proctor.attention.${tile.attention}`));
  set(".tile-name", tile.name);
  set(".tile-id", [tile.candidate, tile.office].filter(Boolean).join(" · "));
  set(".tile-state", t(`proctor.state.${tile.state}`, {}, tile.state));
  const progress = $("progress", card);
  progress.max = Math.max(1, tile.total);
  progress.value = tile.answered;
  set(".tile-progress span", t("proctor.progress", { answered: tile.answered, total: tile.total }));
  set(".tile-time", timeText(tile));
  set(".tile-connection", connectionText(tile));
  $(".tile-connection", card).dataset.connected = tile.connected || !tile.last_seen ? String(tile.connected) : "lost";
  set(
    ".tile-irregularities",
    tile.irregularities > 0
      ? t("proctor.irregularities", { count: tile.irregularities, last: irregularityName(tile.last_irregularity?.kind ?? "") })
      : t("proctor.noIrregularities"),
  );
  $(".tile-irregularities", card).dataset.count = tile.irregularities;
  set(".no-snapshot", t("proctor.noSnapshot"));
  set(".open-label", t("proctor.details"));
  set(".open-name", `: ${tile.name}`);
  const img = $(".tile-snapshot", card);
  img.alt = t("proctor.snapshotOf", { name: tile.name });
  if (tile.snapshot_at && P.snapshots.get(tile.sitting)?.at !== tile.snapshot_at) wantSnapshot(tile.sitting);
}

function timeText(tile) {
  if (isClosed(tile) || tile.state === "scheduled" || tile.state === "checked-in") return "";
  const text = t("proctor.remaining", { time: formatDuration(remainingMs(tile)) });
  return tile.state === "paused" ? `${text} · ${t("proctor.state.paused")}` : text;
}

function connectionText(tile) {
  if (tile.connected) return t("proctor.connected");
  if (isClosed(tile)) return "";
  if (!tile.last_seen && (tile.state === "scheduled" || tile.state === "checked-in")) return t("proctor.notArrived");
  const parts = [t("proctor.disconnected")];
  if (tile.last_seen) parts.push(t("proctor.lastSeen", { time: clockTime(tile.last_seen) }));
  if (tile.lost_s > 0) parts.push(t("proctor.lost", { time: formatDuration(tile.lost_s * 1000) }));
  return parts.join(" · ");
}

/** Filter and order the grid: what needs attention first, then by name. */
function arrange() {
  const filter = $("#filter").value;
  const query = $("#search").value.trim().toLowerCase();
  const shown = [...P.tiles.values()].filter((tile) => {
    if (query && !`${tile.name} ${tile.candidate}`.toLowerCase().includes(query)) return false;
    if (filter === "attention") return tile.attention >= 2;
    if (filter === "waiting") return tile.state === "scheduled" || tile.state === "checked-in";
    if (filter === "running") return tile.state === "running" || tile.state === "paused";
    if (filter === "closed") return isClosed(tile);
    return true;
  });
  const collator = new Intl.Collator(document.documentElement.lang);
  shown.sort((a, b) => b.attention - a.attention || collator.compare(a.name, b.name));
  const order = shown.map((tile) => tile.sitting);
  const list = $("#tiles");
  if (order.join("\n") !== P.order.join("\n")) {
    // Moving nodes drops focus; a keyboard user keeps their place.
    const focused = document.activeElement;
    const keep = list.contains(focused) ? focused : null;
    const wanted = new Set(order);
    for (const [id, card] of P.cards) if (!wanted.has(id) && card.parentNode) card.remove();
    order.forEach((id, index) => {
      const card = P.cards.get(id);
      if (list.children[index] !== card) list.insertBefore(card, list.children[index] ?? null);
    });
    if (keep && document.activeElement !== keep && keep.isConnected) keep.focus({ preventScroll: true });
    P.order = order;
  }
  $("#empty").hidden = order.length > 0;
  renderSummary(shown.length);
}

function renderSummary(shownCount) {
  const tiles = [...P.tiles.values()];
  const count = (test) => tiles.filter(test).length;
  $("#summary").textContent = t("proctor.summary", {
    now: count((tile) => tile.attention >= 3),
    soon: count((tile) => tile.attention === 2),
    running: count((tile) => tile.state === "running" || tile.state === "paused"),
    waiting: count((tile) => tile.state === "scheduled" || tile.state === "checked-in"),
    closed: count(isClosed),
    shown: shownCount,
    total: tiles.length,
  });
}

function tick() {
  for (const tile of P.tiles.values()) {
    if (tile.state !== "running") continue;
    const card = P.cards.get(tile.sitting);
    const node = card && $(".tile-time", card);
    const text = timeText(tile);
    if (node && node.textContent !== text) node.textContent = text;
  }
  if (P.detail) {
    const tile = P.tiles.get(P.detail);
    if (tile?.state === "running") renderFacts(tile);
  }
}

// -- camera stills ------------------------------------------------------------------------------

function wantSnapshot(sittingId) {
  if (document.body.classList.contains("compact") && P.detail !== sittingId) return;
  if (!P.visible.has(sittingId) && P.detail !== sittingId) return;
  if (!P.snapshotQueue.includes(sittingId)) P.snapshotQueue.push(sittingId);
  pumpSnapshots();
}

async function pumpSnapshots() {
  while (P.snapshotBusy < SNAPSHOT_CONCURRENCY && P.snapshotQueue.length > 0) {
    const sittingId = P.snapshotQueue.shift();
    const tile = P.tiles.get(sittingId);
    if (!tile?.snapshot_at) continue;
    P.snapshotBusy += 1;
    loadSnapshot(sittingId, tile.snapshot_at).finally(() => {
      P.snapshotBusy -= 1;
      pumpSnapshots();
    });
  }
}

async function loadSnapshot(sittingId, at) {
  try {
    // The still needs the staff token, which an <img src> cannot send: fetch, then a blob URL.
    const response = await fetch(`/api/v1/sittings/${sittingId}/snapshot`, {
      headers: { Authorization: `Bearer ${P.auth.token}` },
      cache: "no-store",
    });
    if (!response.ok) return;
    const url = URL.createObjectURL(await response.blob());
    const previous = P.snapshots.get(sittingId);
    P.snapshots.set(sittingId, { at, url });
    if (previous) URL.revokeObjectURL(previous.url);
    const card = P.cards.get(sittingId);
    if (card) showPicture($(".tile-snapshot", card), $(".no-snapshot", card), url);
    if (P.detail === sittingId) showPicture($("#detail-snapshot"), $("#detail-nosnapshot"), url);
  } catch {
    // the next snapshot_at change tries again
  }
}

function showPicture(img, placeholder, url) {
  img.src = url;
  img.hidden = false;
  placeholder.hidden = true;
}

// -- detail and actions -------------------------------------------------------------------------

function openDetail(sittingId) {
  P.detail = sittingId;
  $("#action-result").textContent = "";
  for (const form of $$("#actions form")) form.reset();
  const snapshot = P.snapshots.get(sittingId);
  if (snapshot) showPicture($("#detail-snapshot"), $("#detail-nosnapshot"), snapshot.url);
  else {
    $("#detail-snapshot").hidden = true;
    $("#detail-nosnapshot").hidden = false;
    wantSnapshot(sittingId);
  }
  renderDetail();
  const dialog = $("#detail");
  if (!dialog.open) dialog.showModal();
  loadRecords();
}

function closeDetail() {
  const sittingId = P.detail;
  P.detail = null;
  $("#detail").close();
  // Back to where the proctor was.
  const card = P.cards.get(sittingId);
  $(".tile-open", card ?? document)?.focus();
}

function renderDetail() {
  const tile = P.tiles.get(P.detail);
  if (!tile) return;
  $("#detail-name").textContent = tile.name;
  $("#detail-snapshot").alt = t("proctor.snapshotOf", { name: tile.name });
  renderFacts(tile);
  if (P.auth.role !== "observer") renderActions(tile);
}

function renderFacts(tile) {
  const facts = [
    ["proctor.detail.candidate", tile.candidate],
    ["proctor.detail.document", tile.document ?? ""],
    ["proctor.detail.office", tile.office],
    ["proctor.detail.part", tile.part],
    ["proctor.detail.state", t(`proctor.state.${tile.state}`, {}, tile.state)],
    ["proctor.detail.progress", t("proctor.progress", { answered: tile.answered, total: tile.total })],
    ["proctor.detail.time", timeText(tile) || "—"],
    ["proctor.detail.connection", connectionText(tile) || "—"],
    [
      "proctor.detail.identity",
      tile.identity ? t("proctor.identity.confirmed", { by: tile.identity.by, time: clockTime(tile.identity.at) }) : t("proctor.identity.missing"),
    ],
    [
      "proctor.detail.irregularities",
      tile.irregularities > 0
        ? t("proctor.irregularities", { count: tile.irregularities, last: irregularityName(tile.last_irregularity?.kind ?? "") })
        : t("proctor.noIrregularities"),
    ],
  ];
  $("#detail-facts").replaceChildren(...facts.flatMap(([key, value]) => [el("dt", {}, t(key)), el("dd", {}, value)]));
}

function renderActions(tile) {
  const state = tile.state;
  const before = state === "scheduled" || state === "checked-in";
  const live = state === "running" || state === "paused";
  const available = {
    "confirm-identity": !tile.identity && before,
    admit: state === "scheduled",
    warn: !isClosed(tile),
    pause: state === "running",
    resume: state === "paused",
    "grant-time": live,
    "return-lost-time": live && tile.lost_s > 0,
    terminate: live || state === "checked-in",
    "no-show": before,
    "new-code": !isClosed(tile),
  };
  for (const form of $$("#actions form")) form.hidden = !available[form.dataset.kind];
  const admit = $('#actions form[data-kind="admit"] button');
  admit.disabled = !tile.identity;
  $("#admit-why").textContent = tile.identity ? "" : t("proctor.action.identityFirst");
  $("#return-lost-button").textContent = t("proctor.action.return-lost-time", { time: formatDuration(tile.lost_s * 1000) });
  $("#actions-none").hidden = Object.values(available).some(Boolean);
}

async function onAction(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const kind = form.dataset.kind;
  const tile = P.tiles.get(P.detail);
  if (!tile) return;
  const message = { t: "action", sitting: tile.sitting, kind };
  const field = (name) => form.elements.namedItem(name);
  const result = $("#action-result");
  const need = (name, key) => {
    const input = field(name);
    if (input.value.trim()) return true;
    result.textContent = t(key);
    result.dataset.state = "failed";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return false;
  };
  for (const input of $$("[aria-invalid]", form)) input.removeAttribute("aria-invalid");
  if (kind === "confirm-identity") {
    if (!need("document", "proctor.needDocument")) return;
    message.document = field("document").value.trim();
  } else if (kind === "warn") {
    if (!need("text", "proctor.needText")) return;
    message.text = field("text").value.trim();
  } else if (kind === "pause" || kind === "terminate") {
    if (!need("reason", "proctor.needReason")) return;
    message.reason = field("reason").value.trim();
  } else if (kind === "grant-time") {
    const minutes = Number(field("minutes").value);
    if (!(minutes > 0)) {
      need("minutes", "proctor.needMinutes");
      return;
    }
    if (!need("reason", "proctor.needReason")) return;
    message.seconds = minutes * 60;
    message.reason = field("reason").value.trim();
  }
  if (IRREVERSIBLE.has(kind)) {
    const text = t(`proctor.confirm.${kind}`, { name: tile.name, minutes: message.seconds / 60 });
    if (!(await confirmAction(text))) return;
  }
  const button = $("button[type=submit]", form);
  button.disabled = true;
  result.dataset.state = "busy";
  result.textContent = t("proctor.sending");
  try {
    const reply = await P.socket.request(message);
    if (reply.ok) {
      result.dataset.state = "ok";
      result.textContent = reply.access_code
        ? t("proctor.result.newCode", { code: reply.access_code })
        : t("proctor.result.ok", { action: t(`proctor.done.${kind}`) });
      form.reset();
      loadRecords();
    } else {
      result.dataset.state = "failed";
      result.textContent = t("proctor.result.refused", {
        why: t(`proctor.refusal.${reply.code}`, {}, reply.message),
        code: reply.code,
      });
    }
  } catch {
    result.dataset.state = "failed";
    result.textContent = t("proctor.result.noReply");
  } finally {
    button.disabled = false;
    renderDetail();
  }
}

/** Ask before an action that cannot be undone; resolves true only on an explicit yes. */
function confirmAction(text) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  return new Promise((resolve) => {
    const finish = (answer) => {
      dialog.removeEventListener("close", onClose);
      $("#confirm-yes").onclick = null;
      $("#confirm-no").onclick = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onClose = () => finish(false);
    dialog.addEventListener("close", onClose);
    $("#confirm-yes").onclick = () => finish(true);
    $("#confirm-no").onclick = () => finish(false);
    dialog.showModal();
  });
}

async function loadRecords() {
  const sittingId = P.detail;
  if (!sittingId) return;
  let reply;
  try {
    reply = await P.socket.request({ t: "detail", sitting: sittingId });
  } catch {
    return;
  }
  if (reply.t !== "detail-reply" || P.detail !== sittingId) return;
  const events = [...reply.events].reverse(); // newest first
  $("#events tbody").replaceChildren(
    ...events.map((event) =>
      el(
        "tr",
        { dataset: { kind: event.kind } },
        el("td", {}, event.seq),
        el("td", {}, clockTime(event.at)),
        el("td", {}, event.kind),
        el("td", { class: "event-data", lang: "en" }, summarize(event.data)),
      ),
    ),
  );
  $("#fixation tbody").replaceChildren(
    ...reply.fixation.map((record) =>
      el(
        "tr",
        {},
        el("td", {}, record.seq),
        el("td", {}, t(`proctor.media.${record.kind}`, {}, record.kind)),
        el("td", {}, clockTime(record.server_time)),
        el("td", {}, formatBytes(record.size)),
        el("td", {}, record.media_type),
        el("td", { class: "hash", title: record.sha256 }, `${record.sha256.slice(0, 12)}…`),
      ),
    ),
  );
}

function summarize(data) {
  if (!data || typeof data !== "object") return "";
  return Object.entries(data)
    .filter(([, value]) => value !== null && value !== "")
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join("; ");
}

function formatBytes(size) {
  return new Intl.NumberFormat(document.documentElement.lang, { style: "unit", unit: "kilobyte", maximumFractionDigits: 1 }).format(size / 1024);
}

// -- start --------------------------------------------------------------------------------------

function rerender() {
  applyTranslations(document);
  if (!P.auth) return;
  $("#role").textContent = t(`proctor.role.${P.auth.role}`, {}, P.auth.role);
  $("#exam-title").textContent = localized(P.auth.exam?.title ?? P.auth.exam);
  for (const tile of P.tiles.values()) renderCard(tile);
  arrange();
  if (P.detail) {
    renderDetail();
    loadRecords();
  }
  if (P.socket) onConnection({ status: P.socket.status });
}

function wire() {
  $("#signin-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  $("#ended-sign-out").addEventListener("click", signOut);
  $("#filter").addEventListener("change", arrange);
  $("#search").addEventListener("input", arrange);
  $("#site").addEventListener("change", () => connect($("#site").value || null));
  $("#density").addEventListener("click", () => {
    const compact = !document.body.classList.contains("compact");
    document.body.classList.toggle("compact", compact);
    $("#density").setAttribute("aria-pressed", String(compact));
  });
  $("#detail-close").addEventListener("click", closeDetail);
  $("#detail").addEventListener("close", () => {
    if (P.detail) closeDetail();
  });
  $("#detail-refresh").addEventListener("click", loadRecords);
  for (const form of $$("#actions form")) form.addEventListener("submit", onAction);
  const picker = $("#ui-language");
  picker.addEventListener("change", () => setLanguage(picker.value));
  onLanguageChange((language) => {
    picker.value = language;
    rerender();
  });
  P.visibility = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const id = entry.target.dataset.sitting;
      if (entry.isIntersecting) {
        P.visible.add(id);
        const tile = P.tiles.get(id);
        if (tile?.snapshot_at && P.snapshots.get(id)?.at !== tile.snapshot_at) wantSnapshot(id);
      } else {
        P.visible.delete(id);
      }
    }
  });
  setInterval(tick, 1000);
}

function main() {
  initLanguage();
  $("#ui-language").value = document.documentElement.lang;
  wire();
  applyTranslations(document);
  const stored = sessionStorage.getItem(AUTH_KEY);
  if (stored) {
    const auth = JSON.parse(stored);
    if (auth.expires_at * 1000 > Date.now()) {
      P.auth = auth;
      startBoard();
      return;
    }
    sessionStorage.removeItem(AUTH_KEY);
  }
  showScreen("signin");
}

main();
