// Small DOM helpers shared by both pages.

/** An element with attributes (`on*` functions become listeners) and children (strings or nodes). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "class") {
      node.className = value;
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** "1:05:09" or "05:09": hours only when there are any. */
export function formatDuration(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const two = (n) => String(n).padStart(2, "0");
  return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${two(minutes)}:${two(seconds)}`;
}

/** Say something to screen readers through the page's assertive live region. */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  // Clearing first makes the same sentence be read again when it repeats.
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** Poll the server's health endpoint: the round trip in ms, or null when it fails. */
export async function httpRoundTrip(path = "/api/v1/health") {
  const started = performance.now();
  try {
    const response = await fetch(path, { cache: "no-store" });
    if (!response.ok) return null;
    await response.json();
    return Math.round(performance.now() - started);
  } catch {
    return null;
  }
}
