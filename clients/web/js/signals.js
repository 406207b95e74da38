// What the page sees that a proctor may want to know (docs/protocol.md 6.2, KZ-4, UA-8):
// the page hidden, focus lost, full screen left, copy and paste, a second screen.

export function watchPage(report) {
  const listeners = [];
  const on = (target, type, handler, options) => {
    target.addEventListener(type, handler, options);
    listeners.push(() => target.removeEventListener(type, handler, options));
  };
  on(document, "visibilitychange", () => report(document.hidden ? "page-hidden" : "page-visible"));
  on(window, "blur", () => report("focus-lost"));
  on(window, "focus", () => report("focus-back"));
  on(document, "fullscreenchange", () =>
    report(document.fullscreenElement ? "fullscreen-enter" : "fullscreen-exit"),
  );
  // Copying the items out and pasting text in are both refused, and both reported.
  for (const type of ["copy", "cut"]) {
    on(document, type, (event) => {
      event.preventDefault();
      report("copy", type);
    });
  }
  on(document, "paste", (event) => {
    event.preventDefault();
    report("paste");
  });
  const checkScreens = () => {
    if (window.screen?.isExtended) report("second-screen", "screen.isExtended");
  };
  checkScreens();
  if (window.screen?.addEventListener) on(window.screen, "change", checkScreens);
  return () => listeners.splice(0).forEach((remove) => remove());
}

/** Full screen for the test, where the browser allows it (needs a click to ask). */
export async function enterFullscreen() {
  if (document.fullscreenElement || !document.documentElement.requestFullscreen) return false;
  try {
    await document.documentElement.requestFullscreen({ navigationUI: "hide" });
    return true;
  } catch {
    return false;
  }
}
