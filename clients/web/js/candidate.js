// The candidate's page: sign in, language, device check, the proctor's admission, the rules, then
// one question at a time against the server's clock, until the server closes the sitting.
// Protocol: docs/protocol.md. Nothing here decides time or closes the test on its own.

import { ServerClock } from "./clock.js";
import { $, $$, announce, el, formatDuration } from "./dom.js";
import { applyTranslations, initLanguage, languageName, onLanguageChange, setLanguage, t } from "./i18n.js";
import { Fixation, LevelMeter, openDevices } from "./media.js";
import { enterFullscreen, watchPage } from "./signals.js";
import { SittingSocket } from "./sitting-socket.js";

const SIGNIN_KEY = "examhall.signin";
const PROGRESS_KEY = "examhall.progress";
const PRE_START_SCREENS = new Set(["connecting", "language", "devices", "waiting", "rules"]);

const S = {
  signin: null, // the sign-in reply: token, candidate, exam
  partIndex: 0,
  socket: null,
  welcome: null,
  state: null, // the sitting's state as the server last said
  language: null, // the test language
  items: [], // the form
  answers: new Map(), // item id -> {choice, flagged}: what the candidate chose, sent or not
  current: 0,
  clock: new ServerClock(),
  stream: null,
  meter: null,
  fixation: null,
  stopWatchingPage: null,
  devicesOk: false,
  withoutDevices: false,
  screen: null,
  closed: new Map(), // part id -> closed message
  announcedZero: false,
};

// -- screens ------------------------------------------------------------------------------------

function showScreen(name) {
  if (S.screen === name) return;
  S.screen = name;
  for (const section of $$("main > section")) section.hidden = section.id !== `screen-${name}`;
  document.body.dataset.screen = name;
  // The access code works once: signing out mid-way would lock the candidate out, so the way
  // out is offered only when the test is over or cannot go on.
  const lastPartOver = name === "closed" && !S.signin?.exam.parts[S.partIndex + 1];
  $("#sign-out").hidden = !(S.signin && (lastPartOver || name === "ended"));
  const heading = $(`#screen-${name} h1`);
  if (heading) {
    document.title = `${heading.textContent} — examhall`;
    heading.focus({ preventScroll: false });
  }
}

function part() {
  return S.signin?.exam.parts[S.partIndex] ?? null;
}

function localized(map) {
  if (!map) return "";
  return map[S.language] ?? map[document.documentElement.lang] ?? Object.values(map)[0] ?? "";
}

function saveProgress() {
  sessionStorage.setItem(
    PROGRESS_KEY,
    JSON.stringify({ partIndex: S.partIndex, language: S.language, current: S.current, devicesOk: S.devicesOk }),
  );
}

// -- sign in ------------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const input = $("#access-code");
  const message = $("#signin-error");
  const code = input.value.trim();
  message.textContent = "";
  input.removeAttribute("aria-invalid");
  if (!code) {
    message.textContent = t("signin.empty");
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  const button = $("#signin-button");
  button.disabled = true;
  try {
    const response = await fetch("/api/v1/signin", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      message.textContent = t(`signin.error.${body.error}`, {}, t("signin.error.other"));
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    S.signin = body;
    sessionStorage.setItem(SIGNIN_KEY, JSON.stringify(body));
    afterSignIn();
  } catch {
    message.textContent = t("signin.error.network");
  } finally {
    button.disabled = false;
  }
}

function afterSignIn() {
  const { exam, candidate } = S.signin;
  // The interface follows the exam's language when the browser's is not one of the four.
  if (!exam.languages.includes(document.documentElement.lang) && exam.languages.length === 1) {
    setLanguage(exam.languages[0]);
  }
  $("#who").textContent = `${candidate.name} · ${candidate.id}`;
  $("#who").hidden = false;
  renderExamTitle();
  enterPart();
}

function renderExamTitle() {
  const title = S.signin ? localized(S.signin.exam.title) : "";
  $("#exam-title").textContent = title;
  $("#exam-title").title = title;
}

function signOut() {
  S.socket?.close();
  S.fixation?.stop();
  S.stream?.getTracks().forEach((track) => track.stop());
  sessionStorage.clear();
  location.reload();
}

// -- the socket ---------------------------------------------------------------------------------

function enterPart() {
  const current = part();
  S.welcome = null;
  S.items = [];
  S.answers = new Map();
  S.state = null;
  S.clock = new ServerClock();
  S.announcedZero = false;
  showScreen("connecting");
  const previous = S.socket;
  const socket = new SittingSocket({
    token: S.signin.token,
    part: current.id,
    storageKey: `examhall.outbox.${current.id}`,
  });
  S.socket = socket;
  previous?.close();
  // Only the current part's socket speaks to the page; the previous one is closing.
  socket.addEventListener("message", (event) => socket === S.socket && onMessage(event.detail));
  socket.addEventListener("status", (event) => socket === S.socket && onConnection(event.detail));
  socket.connect();
}

function onMessage(message) {
  switch (message.t) {
    case "welcome":
      onWelcome(message);
      break;
    case "form":
      onForm(message);
      break;
    case "clock":
      S.state = message.state;
      S.clock.update(message.remaining_ms, message.state, 0, message.deadline);
      renderPaused();
      renderTimer();
      break;
    case "pong":
      if (S.state === "running" || S.state === "paused") {
        S.clock.offer(message.remaining_ms, S.state, (message.roundTripMs ?? 0) / 2);
      }
      renderConnection();
      renderDeviceConnection();
      break;
    case "ack":
      renderSaveState();
      renderSubmitAvailability();
      renderMapCell(S.items.findIndex((item) => item.id === message.item));
      break;
    case "warning":
      onTimeWarning(message);
      break;
    case "notice":
      showNotice(message.text, message.level);
      break;
    case "status":
      onStatus(message);
      break;
    case "closed":
      onClosed(message);
      break;
    case "error":
      onServerError(message);
      break;
    default:
      break;
  }
}

function onWelcome(welcome) {
  S.welcome = welcome;
  S.state = welcome.state;
  S.clock.update(welcome.remaining_ms, welcome.state, 0, welcome.deadline);
  S.answers = new Map(welcome.answers.map((a) => [a.item, { choice: a.choice, flagged: a.flagged }]));
  for (const [item, pending] of S.socket.pendingByItem()) S.answers.set(item, pending);
  if (welcome.language) {
    S.language = welcome.language; // started: the form follows
    return;
  }
  if (PRE_START_SCREENS.has(S.screen) && !(S.screen === "devices" || S.screen === "language")) {
    routeBeforeStart();
  }
}

/** The next step before the part starts: language, devices, the proctor, the rules. */
function routeBeforeStart() {
  const languages = S.welcome?.languages ?? S.signin.exam.languages;
  if (!S.language || !languages.includes(S.language)) {
    if (languages.length > 1) {
      renderLanguageChoice(languages);
      showScreen("language");
      return;
    }
    S.language = languages[0];
  }
  saveProgress();
  if (!S.devicesOk) {
    showScreen("devices");
    renderDeviceConnection();
    return;
  }
  if (S.state === "scheduled") {
    renderWaiting();
    showScreen("waiting");
    return;
  }
  renderRules();
  showScreen("rules");
}

function onStatus(status) {
  S.state = status.state;
  if (status.state === "checked-in" && S.screen === "waiting") {
    announce(t("waiting.admitted"));
    routeBeforeStart();
  }
  renderRulesStart();
  renderPaused();
}

function onConnection({ status, code }) {
  renderConnection();
  renderDeviceConnection();
  renderRulesStart();
  renderSubmitAvailability();
  const banner = $("#connection-banner");
  if (status === "lost" || (status === "connecting" && S.screen === "test")) {
    if (banner.hidden && S.screen === "test") announce(t("connection.lostAnnounce"));
    banner.hidden = S.screen === "signin";
  } else if (status === "open") {
    if (!banner.hidden && S.screen === "test") announce(t("connection.back"));
    banner.hidden = true;
  } else if (status === "ended") {
    banner.hidden = true;
    if (!S.closed.has(part()?.id)) showEnded(code);
  }
  renderSaveState();
  renderMap();
}

function onServerError(error) {
  if (error.seq !== null && error.seq !== undefined) {
    if (error.code === "too_late") announce(t("test.tooLate"));
    return;
  }
  if (error.fatal) return; // the close that follows says what happens next
  if (S.screen === "rules") $("#rules-error").textContent = t("rules.refused", { message: error.message });
}

function showEnded(code) {
  const key = { 4401: "ended.token", 4403: "ended.forbidden", 4409: "ended.superseded" }[code] ?? "ended.other";
  $("#ended-text").textContent = t(key);
  $("#ended-code").textContent = t("ended.code", { code });
  stopProctoring();
  showScreen("ended");
}

// -- language -----------------------------------------------------------------------------------

function renderLanguageChoice(languages) {
  const list = $("#language-options");
  list.replaceChildren(
    ...languages.map((code, index) =>
      el(
        "label",
        { class: "choice", lang: code },
        el("input", {
          type: "radio",
          name: "test-language",
          value: code,
          checked: code === (S.language ?? document.documentElement.lang) || (index === 0 && !languages.includes(document.documentElement.lang)),
        }),
        el("span", {}, languageName(code)),
      ),
    ),
  );
}

function chooseLanguage(event) {
  event.preventDefault();
  const chosen = $("input[name=test-language]:checked");
  if (!chosen) return;
  S.language = chosen.value;
  // KZ-1: the interface follows the test language the candidate chose.
  setLanguage(S.language);
  routeBeforeStart();
}

// -- device check -------------------------------------------------------------------------------

async function checkDevices() {
  const button = $("#devices-check");
  button.disabled = true;
  setDeviceRow("camera", "checking");
  setDeviceRow("microphone", "checking");
  $("#devices-help").hidden = true;
  try {
    if (!S.stream || S.stream.getTracks().some((track) => track.readyState === "ended")) {
      S.stream?.getTracks().forEach((track) => track.stop());
      S.stream = await openDevices();
    }
    const video = $("#camera-preview");
    video.srcObject = S.stream;
    await video.play().catch(() => {});
    const hasVideo = S.stream.getVideoTracks().some((track) => track.readyState === "live");
    const hasAudio = S.stream.getAudioTracks().some((track) => track.readyState === "live");
    setDeviceRow("camera", hasVideo ? "ok" : "failed", hasVideo ? "" : "missing");
    setDeviceRow("microphone", hasAudio ? "ok" : "failed", hasAudio ? "" : "missing");
    if (hasAudio) startMeter();
  } catch (error) {
    setDeviceRow("camera", "failed", error.reason);
    setDeviceRow("microphone", "failed", error.reason);
  } finally {
    button.disabled = false;
    renderDeviceVerdict();
  }
}

function startMeter() {
  S.meter?.close();
  try {
    S.meter = new LevelMeter(S.stream);
  } catch {
    return;
  }
  const bar = $("#microphone-level");
  const tick = () => {
    if (!S.meter || S.screen !== "devices") return;
    const level = S.meter.level();
    bar.value = Math.min(1, level * 4);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

const deviceResults = { camera: { state: "idle" }, microphone: { state: "idle" } };

function setDeviceRow(device, state, reason = "") {
  deviceResults[device] = { state, reason };
  const row = $(`#device-${device}`);
  row.dataset.state = state;
  $(".device-state", row).textContent = t(`devices.state.${state}`);
  $(".device-reason", row).textContent = state === "failed" ? t(`devices.reason.${reason || "failed"}`) : "";
}

function renderDeviceConnection() {
  const row = $("#device-connection");
  if (!row || !S.socket) return;
  const open = S.socket.status === "open";
  row.dataset.state = open ? "ok" : "failed";
  $(".device-state", row).textContent = open
    ? S.socket.roundTripMs === null
      ? t("devices.state.ok")
      : t("devices.roundTrip", { ms: S.socket.roundTripMs })
    : t("devices.state.checking");
  $(".device-reason", row).textContent = open ? "" : t("devices.reason.connection");
  renderDeviceVerdict();
}

/** The exam lets a candidate sit without camera and microphone (`recording = "optional"`). */
const recordingOptional = () => S.signin?.exam?.recording === "optional";

function renderDeviceVerdict() {
  const cameraOk = deviceResults.camera.state === "ok";
  const microphoneOk = deviceResults.microphone.state === "ok";
  const connectionOk = S.socket?.status === "open";
  const failed = [deviceResults.camera.state, deviceResults.microphone.state].includes("failed");
  const devicesOk = (cameraOk && microphoneOk) || (failed && recordingOptional());
  $("#devices-continue").disabled = !(devicesOk && connectionOk);
  $("#devices-help").hidden = !failed;
  $("#devices-optional").hidden = !(failed && recordingOptional());
}

/** What is missing, for the proctor: "camera: denied; microphone: missing". */
function missingDevices() {
  return ["camera", "microphone"]
    .filter((device) => deviceResults[device].state !== "ok")
    .map((device) => `${device}: ${deviceResults[device].reason || "failed"}`)
    .join("; ");
}

function devicesContinue() {
  const missing = missingDevices();
  if (missing) S.socket.signal("no-devices", missing);
  S.withoutDevices = Boolean(missing); // the part starts unrecorded: not a reload to recover from
  S.devicesOk = true;
  S.meter?.close();
  S.meter = null;
  startProctoring();
  routeBeforeStart();
}

// -- proctoring: recording, snapshots, signals ----------------------------------------------------

function startProctoring() {
  if (S.fixation || !S.stream) return;
  S.fixation = new Fixation({
    stream: S.stream,
    token: S.signin.token,
    part: part().id,
    mediaUrl: S.signin.media_socket,
    socket: S.socket,
    storageKey: `examhall.chunks.${part().id}`,
  });
  const video = $("#self-view");
  video.srcObject = S.stream;
  video.play().catch(() => {});
  S.fixation.startSnapshots(video);
}

/** After a reload mid-test the camera is asked for again; a failure is reported, not blocking. */
async function resumeProctoring() {
  if (S.fixation) return;
  try {
    S.stream = await openDevices();
    S.devicesOk = true;
    startProctoring();
    S.fixation.startRecording();
  } catch (error) {
    const reason = error.reason ?? error.message;
    if (recordingOptional()) {
      S.socket.signal("no-devices", `after a reload: ${reason}`);
      return;
    }
    S.socket.signal("media-error", `camera or microphone after resume: ${reason}`);
    showNotice(t("devices.lostDuringTest"), "warning");
  }
}

function stopProctoring() {
  S.fixation?.stop();
  S.fixation = null;
  S.stopWatchingPage?.();
  S.stopWatchingPage = null;
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
}

// -- waiting for the proctor and the rules ------------------------------------------------------

function renderWaiting() {
  const { candidate } = S.signin;
  $("#waiting-who").textContent = `${candidate.name} · ${candidate.id}`;
}

function renderRules() {
  const current = part();
  const minutes = Math.round((S.welcome?.time_limit_s ?? current.minutes * 60) / 60);
  const seconds = S.welcome?.time_limit_s ?? current.minutes * 60;
  $("#rules-part").textContent = localized(S.welcome?.title ?? current.title);
  $("#rules-facts").textContent = t("rules.facts", {
    items: S.welcome?.item_count ?? current.items,
    time: seconds < 120 ? t("units.seconds", { count: Math.round(seconds) }) : t("units.minutes", { count: minutes }),
  });
  $("#rules-part-number").textContent =
    S.signin.exam.parts.length > 1 ? t("rules.partOf", { n: S.partIndex + 1, total: S.signin.exam.parts.length }) : "";
  $("#rules-error").textContent = "";
  renderRulesStart();
}

function renderRulesStart() {
  const button = $("#start-button");
  if (!button) return;
  const ready = $("#rules-accept").checked && S.state === "checked-in" && S.socket?.status === "open";
  button.disabled = !ready;
}

function startPart() {
  if (!S.socket.send({ t: "start", language: S.language })) return;
  $("#start-button").disabled = true;
  enterFullscreen();
  S.fixation?.startRecording();
  if (!S.stopWatchingPage) S.stopWatchingPage = watchPage((kind, detail) => S.socket.signal(kind, detail));
}

// -- the test -----------------------------------------------------------------------------------

function onForm(form) {
  S.language = form.language;
  S.items = form.items;
  const saved = JSON.parse(sessionStorage.getItem(PROGRESS_KEY) ?? "{}");
  if (saved.partIndex === S.partIndex && Number.isInteger(saved.current)) S.current = saved.current;
  S.current = Math.min(Math.max(0, S.current), S.items.length - 1);
  saveProgress();
  if (!S.fixation && !S.withoutDevices) resumeProctoring();
  else S.fixation?.startRecording();
  if (!S.stopWatchingPage) S.stopWatchingPage = watchPage((kind, detail) => S.socket.signal(kind, detail));
  buildMap();
  const wasTest = S.screen === "test";
  showScreen("test");
  renderQuestion(!wasTest);
  renderPaused();
  renderTimer();
}

function buildMap() {
  const list = $("#qmap-list");
  list.replaceChildren(
    ...S.items.map((item, index) =>
      el(
        "li",
        {},
        el("button", { type: "button", class: "qmap-cell", dataset: { index }, onclick: () => goTo(index) }),
      ),
    ),
  );
  renderMap();
}

function itemState(item) {
  const answer = S.answers.get(item.id);
  const pending = S.socket?.pendingByItem().has(item.id) ?? false;
  return {
    answered: answer?.choice !== null && answer?.choice !== undefined,
    flagged: Boolean(answer?.flagged),
    pending,
  };
}

function renderMap() {
  S.items.forEach((_, index) => renderMapCell(index));
  renderProgress();
}

function renderMapCell(index) {
  if (index < 0) return;
  const cell = $(`.qmap-cell[data-index="${index}"]`);
  if (!cell) return;
  const item = S.items[index];
  const state = itemState(item);
  const current = index === S.current;
  cell.classList.toggle("answered", state.answered);
  cell.classList.toggle("flagged", state.flagged);
  cell.classList.toggle("pending", state.pending);
  cell.classList.toggle("current", current);
  if (current) cell.setAttribute("aria-current", "step");
  else cell.removeAttribute("aria-current");
  const words = [t("test.questionN", { n: index + 1 })];
  words.push(state.answered ? t("map.answered") : t("map.unanswered"));
  if (state.flagged) words.push(t("map.flagged"));
  if (state.pending) words.push(t("map.pending"));
  cell.setAttribute("aria-label", words.join(", "));
  const number = el("span", { class: "qmap-number", "aria-hidden": "true" }, index + 1);
  if (state.flagged) cell.replaceChildren(number, el("span", { class: "qmap-flag", "aria-hidden": "true" }, "⚑"));
  else cell.replaceChildren(number);
  renderProgress();
}

function renderProgress() {
  const answered = S.items.filter((item) => itemState(item).answered).length;
  $("#progress").textContent = t("test.progress", { answered, total: S.items.length });
}

function renderQuestion(focusHeading = true) {
  const item = S.items[S.current];
  if (!item) return;
  const state = S.answers.get(item.id) ?? { choice: null, flagged: false };
  $("#question").setAttribute("lang", S.language);
  $("#q-heading").textContent = t("test.questionOf", { n: S.current + 1, total: S.items.length });
  $("#q-stem").textContent = item.stem;
  const options = $("#q-options-list");
  options.replaceChildren(
    ...item.options.map((text, position) =>
      el(
        "label",
        { class: "choice option" },
        el("input", {
          type: "radio",
          name: "choice",
          value: position,
          checked: state.choice === position,
          onchange: () => choose(position),
        }),
        el("span", { class: "option-letter", "aria-hidden": "true" }, optionLetter(position)),
        el("span", { class: "option-text" }, text),
      ),
    ),
  );
  const flag = $("#flag-button");
  flag.setAttribute("aria-pressed", String(Boolean(state.flagged)));
  flag.textContent = state.flagged ? t("test.unflag") : t("test.flag");
  $("#clear-button").disabled = state.choice === null || state.choice === undefined;
  $("#prev-button").disabled = S.current === 0;
  $("#next-button").disabled = S.current === S.items.length - 1;
  renderSaveState();
  renderMap();
  if (focusHeading) $("#q-heading").focus();
}

function optionLetter(position) {
  return String.fromCharCode("A".charCodeAt(0) + position);
}

function record(item, choice, flagged) {
  S.answers.set(item.id, { choice, flagged });
  S.socket.answer(item.id, choice, flagged);
  renderSaveState();
  renderMapCell(S.current);
}

function choose(position) {
  const item = S.items[S.current];
  const flagged = Boolean(S.answers.get(item.id)?.flagged);
  record(item, position, flagged);
  $("#clear-button").disabled = false;
}

function toggleFlag() {
  const item = S.items[S.current];
  const answer = S.answers.get(item.id) ?? { choice: null, flagged: false };
  record(item, answer.choice, !answer.flagged);
  renderQuestion(false);
  $("#flag-button").focus();
}

function clearAnswer() {
  const item = S.items[S.current];
  const answer = S.answers.get(item.id) ?? { choice: null, flagged: false };
  record(item, null, answer.flagged);
  renderQuestion(false);
  $("#q-options-list input")?.focus();
}

function goTo(index) {
  if (index < 0 || index >= S.items.length) return;
  const before = S.current;
  S.current = index;
  saveProgress();
  renderMapCell(before);
  renderQuestion();
}

function renderSaveState() {
  const status = $("#q-save");
  const item = S.items[S.current];
  if (!status || !item) return;
  const state = itemState(item);
  let key = "test.save.none";
  if (state.pending) key = S.socket.status === "open" ? "test.save.pending" : "test.save.offline";
  else if (S.answers.has(item.id)) key = "test.save.saved";
  status.dataset.state = key.split(".").pop();
  status.textContent = t(key);
  const unsent = S.socket?.outbox.length ?? 0;
  $("#unsent").textContent = unsent > 0 ? t("test.unsent", { count: unsent }) : "";
}

// -- time ---------------------------------------------------------------------------------------

function renderTimer() {
  const timer = $("#timer");
  if (!timer) return;
  const remaining = S.clock.remaining();
  if (remaining === null) return;
  const text = formatDuration(remaining);
  if (timer.textContent !== text) timer.textContent = text;
  const box = $("#timer-box");
  box.classList.toggle("low", remaining <= 5 * 60 * 1000);
  box.classList.toggle("critical", remaining <= 60 * 1000);
  box.classList.toggle("paused", S.state === "paused");
  if (remaining === 0 && S.state === "running" && !S.announcedZero && S.screen === "test") {
    S.announcedZero = true;
    $("#time-up").hidden = false;
    announce(t("test.timeUp"));
  }
}

function onTimeWarning(warning) {
  S.clock.offer(warning.remaining_ms, S.state ?? "running");
  const text = t("test.warning", { time: spokenDuration(warning.threshold_s) });
  $("#time-warning").textContent = text;
  $("#time-warning").hidden = false;
  announce(text);
  renderTimer();
}

function spokenDuration(seconds) {
  if (seconds >= 60 && seconds % 60 === 0) return t("units.minutes", { count: seconds / 60 });
  return t("units.seconds", { count: seconds });
}

function renderPaused() {
  const overlay = $("#paused-overlay");
  if (!overlay) return;
  const paused = S.state === "paused" && S.screen === "test";
  const wasPaused = !overlay.hidden;
  overlay.hidden = !paused;
  $("#test-content").inert = paused;
  if (paused && !wasPaused) {
    announce(t("paused.title"));
    $("#paused-overlay h2").focus();
  } else if (!paused && wasPaused) {
    announce(t("paused.resumed"));
    $("#q-heading").focus();
  }
}

// -- notices ------------------------------------------------------------------------------------

function showNotice(text, level = "info") {
  const box = $("#notice");
  box.dataset.level = level === "warning" ? "warning" : "info";
  $("#notice-text").textContent = text;
  box.hidden = false;
}

// -- submitting ---------------------------------------------------------------------------------

function openSubmitDialog() {
  const unanswered = [];
  const flagged = [];
  S.items.forEach((item, index) => {
    const state = itemState(item);
    if (!state.answered) unanswered.push(index);
    if (state.flagged) flagged.push(index);
  });
  const total = S.items.length;
  $("#submit-summary").textContent = t("submit.summary", { answered: total - unanswered.length, total });
  const jumpList = (indices) =>
    el(
      "ul",
      { class: "jump-list" },
      indices.map((index) =>
        el(
          "li",
          {},
          el(
            "button",
            {
              type: "button",
              class: "link-button",
              onclick: () => {
                $("#submit-dialog").close();
                goTo(index);
              },
            },
            t("test.questionN", { n: index + 1 }),
          ),
        ),
      ),
    );
  const details = $("#submit-details");
  details.replaceChildren();
  if (unanswered.length > 0) {
    details.append(el("h3", {}, t("submit.unanswered", { count: unanswered.length })), jumpList(unanswered));
  } else {
    details.append(el("p", {}, t("submit.allAnswered")));
  }
  if (flagged.length > 0) {
    details.append(el("h3", {}, t("submit.flagged", { count: flagged.length })), jumpList(flagged));
  }
  renderSubmitAvailability();
  $("#submit-dialog").showModal();
}

function renderSubmitAvailability() {
  const confirm = $("#submit-confirm");
  if (!confirm) return;
  const open = S.socket?.status === "open";
  const unsent = S.socket?.outbox.length ?? 0;
  confirm.disabled = !open;
  $("#submit-wait").textContent = !open
    ? t("submit.offline")
    : unsent > 0
      ? t("submit.unsent", { count: unsent })
      : "";
}

async function confirmSubmit() {
  $("#submit-confirm").disabled = true;
  $("#submit-wait").textContent = t("submit.sending");
  // The recording up to this moment goes out first: after the sitting closes the server refuses
  // media (410). Answers still in flight go before the submit on the same socket, so the server
  // stores them before it closes the sitting.
  await S.fixation?.flush();
  if (!S.socket.send({ t: "submit" })) renderSubmitAvailability();
}

// -- closing ------------------------------------------------------------------------------------

function onClosed(closed) {
  const current = part();
  S.closed.set(current.id, closed);
  S.state = closed.state;
  stopProctoring();
  if (!S.signin.exam.parts[S.partIndex + 1]) S.stream?.getTracks().forEach((track) => track.stop());
  const dialog = $("#submit-dialog");
  if (dialog.open) dialog.close();
  renderClosed();
  renderConnection();
  showScreen("closed");
  announce($("#closed-title").textContent);
}

function renderClosed() {
  const current = part();
  const closed = S.closed.get(current?.id);
  if (!closed) return;
  $("#closed-title").textContent = t(`closed.title.${closed.state}`, {}, t("closed.title.other"));
  $("#closed-part").textContent = localized(S.welcome?.title ?? current.title);
  $("#closed-answered").textContent = t("closed.answered", {
    answered: closed.answered,
    total: S.welcome?.item_count ?? current.items,
  });
  // The title already says why in the candidate's language; the reason is shown only when it is
  // a proctor's own words (a termination), in whatever language the proctor wrote them.
  const proctorsWords = closed.state === "terminated" && closed.reason;
  $("#closed-reason").textContent = proctorsWords ? t("closed.reason", { reason: closed.reason }) : "";
  const result = $("#result");
  const hasScore = closed.result && typeof closed.result.score === "number";
  result.hidden = !hasScore;
  if (hasScore) {
    const { score, max_score: max, outcome, reasons } = closed.result;
    $("#result-score").textContent = t("result.score", { score: formatNumber(score), max: formatNumber(max) });
    $("#result-outcome").textContent = t(`result.outcome.${outcome}`, {}, outcome);
    $("#result-outcome").dataset.outcome = outcome;
    // The scheme writes its reasons in English (engine plugins); marked so screen readers say them right.
    $("#result-reasons").replaceChildren(...(reasons ?? []).map((reason) => el("li", { lang: "en" }, reason)));
    $("#result-reasons").hidden = !reasons || reasons.length === 0;
    $("#acknowledge").hidden = false;
  }
  const next = S.signin.exam.parts[S.partIndex + 1];
  $("#next-part").hidden = !next;
  if (next) $("#next-part").textContent = t("closed.nextPart", { title: localized(next.title) });
}

function formatNumber(value) {
  return new Intl.NumberFormat(document.documentElement.lang, { maximumFractionDigits: 2 }).format(value);
}

async function acknowledgeResult() {
  const button = $("#acknowledge-button");
  const status = $("#acknowledge-status");
  button.disabled = true;
  try {
    // UA-9: the candidate confirms having seen the result (the results sheet's signature).
    const response = await fetch(`/api/v1/results/${encodeURIComponent(part().id)}/acknowledge`, {
      method: "POST",
      headers: { Authorization: `Bearer ${S.signin.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ seen_at: Date.now() / 1000 }),
    });
    if (response.ok) {
      status.textContent = t("result.acknowledged");
      status.dataset.state = "ok";
      return;
    }
    status.textContent = t("result.acknowledgeFailed");
  } catch {
    status.textContent = t("result.acknowledgeFailed");
  }
  status.dataset.state = "failed";
  button.disabled = false;
}

function nextPart() {
  S.partIndex += 1;
  S.current = 0;
  S.fixation = null;
  $("#acknowledge-status").textContent = "";
  $("#acknowledge-button").disabled = false;
  $("#rules-accept").checked = false;
  $("#time-warning").hidden = true;
  $("#time-up").hidden = true;
  saveProgress();
  enterPart();
  // The devices were checked for the first part; recording starts again for this one.
  startProctoring();
}

// -- header -------------------------------------------------------------------------------------

function renderConnection() {
  const net = $("#net");
  const socket = S.socket;
  if (!socket) {
    net.hidden = true;
    return;
  }
  // After the server closed the sitting a "disconnected" badge would only alarm.
  net.hidden = S.closed.has(part()?.id);
  net.dataset.state = socket.status;
  const key = { open: "connection.open", connecting: "connection.connecting", lost: "connection.lost", ended: "connection.ended" }[socket.status] ?? "connection.connecting";
  net.textContent =
    socket.status === "open" && socket.roundTripMs !== null
      ? t("connection.openRtt", { ms: socket.roundTripMs })
      : t(key);
}

function rerender() {
  applyTranslations(document);
  renderExamTitle();
  renderConnection();
  if (S.screen === "test") {
    renderQuestion(false);
    renderTimer();
  }
  if (S.screen === "rules") renderRules();
  if (S.screen === "closed") renderClosed();
  if (S.screen === "language") renderLanguageChoice(S.welcome?.languages ?? S.signin.exam.languages);
  if (S.screen === "devices") {
    for (const device of ["camera", "microphone"]) {
      const { state, reason } = deviceResults[device];
      if (state !== "idle") setDeviceRow(device, state, reason);
    }
    renderDeviceConnection();
  }
  if (S.screen === "test") renderSaveState();
  if (S.screen === "ended" && S.socket?.closeInfo) showEnded(S.socket.closeInfo.code);
}

// -- start --------------------------------------------------------------------------------------

function wire() {
  $("#signin-form").addEventListener("submit", signIn);
  $("#language-form").addEventListener("submit", chooseLanguage);
  $("#devices-check").addEventListener("click", checkDevices);
  $("#devices-continue").addEventListener("click", devicesContinue);
  $("#rules-accept").addEventListener("change", renderRulesStart);
  $("#start-button").addEventListener("click", startPart);
  $("#prev-button").addEventListener("click", () => goTo(S.current - 1));
  $("#next-button").addEventListener("click", () => goTo(S.current + 1));
  $("#flag-button").addEventListener("click", toggleFlag);
  $("#clear-button").addEventListener("click", clearAnswer);
  $("#finish-button").addEventListener("click", openSubmitDialog);
  $("#submit-cancel").addEventListener("click", () => $("#submit-dialog").close());
  $("#submit-confirm").addEventListener("click", confirmSubmit);
  $("#notice-dismiss").addEventListener("click", () => {
    $("#notice").hidden = true;
  });
  $("#acknowledge-button").addEventListener("click", acknowledgeResult);
  $("#next-part").addEventListener("click", nextPart);
  $("#sign-out").addEventListener("click", signOut);
  $("#ended-sign-out").addEventListener("click", signOut);
  $("#fullscreen-return").addEventListener("click", enterFullscreen);
  document.addEventListener("fullscreenchange", () => {
    $("#fullscreen-hint").hidden = Boolean(document.fullscreenElement) || S.screen !== "test";
  });
  const picker = $("#ui-language");
  picker.addEventListener("change", () => setLanguage(picker.value));
  onLanguageChange((language) => {
    picker.value = language;
    rerender();
  });
  setInterval(renderTimer, 250);
  // Leaving with unsent answers: the browser asks first (they are kept for a reload anyway).
  window.addEventListener("beforeunload", (event) => {
    if (S.screen === "test" && (S.socket?.outbox.length ?? 0) > 0) event.preventDefault();
  });
}

function main() {
  initLanguage();
  $("#ui-language").value = document.documentElement.lang;
  wire();
  applyTranslations(document);
  const stored = sessionStorage.getItem(SIGNIN_KEY);
  if (stored) {
    const signin = JSON.parse(stored);
    if (signin.expires_at * 1000 > Date.now()) {
      S.signin = signin;
      const progress = JSON.parse(sessionStorage.getItem(PROGRESS_KEY) ?? "{}");
      S.partIndex = progress.partIndex ?? 0;
      S.language = progress.language ?? null;
      S.current = progress.current ?? 0;
      // Devices are checked again after a reload: the stream did not survive it.
      S.devicesOk = false;
      afterSignIn();
      return;
    }
    sessionStorage.clear();
  }
  showScreen("signin");
}

main();
