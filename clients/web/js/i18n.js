// Interface text in Kazakh, Russian, Ukrainian and English. Static text carries
// data-i18n="key" (and data-i18n-aria-label); dynamic text calls t(key, values).
// A value may be a map of plural forms (Intl.PluralRules categories) for {count}.

import en from "./i18n/en.js";
import kk from "./i18n/kk.js";
import ru from "./i18n/ru.js";
import uk from "./i18n/uk.js";

const STRINGS = { kk, ru, uk, en };
export const LANGUAGES = Object.keys(STRINGS);
const PREFERENCE_KEY = "examhall.uiLanguage";
const NAMES = { kk: "Қазақ тілі", ru: "Русский язык", uk: "Українська мова", en: "English" };

let current = "en";
const listeners = [];

/** The language to start with: the one chosen before, else the browser's, else English. */
export function initLanguage() {
  const stored = localStorage.getItem(PREFERENCE_KEY);
  const wanted = [stored, ...(navigator.languages ?? [navigator.language])]
    .filter(Boolean)
    .map((tag) => tag.toLowerCase().split("-")[0]);
  current = wanted.find((code) => LANGUAGES.includes(code)) ?? "en";
  document.documentElement.lang = current;
  return current;
}

export function setLanguage(language) {
  if (!LANGUAGES.includes(language) || language === current) return;
  current = language;
  document.documentElement.lang = language;
  localStorage.setItem(PREFERENCE_KEY, language);
  for (const listener of listeners) listener(language);
}

export function onLanguageChange(listener) {
  listeners.push(listener);
}

export function language() {
  return current;
}

/** A language's own name, for choosing the test language (KZ-1). */
export function languageName(code) {
  return NAMES[code] ?? code;
}

/** The text for `key` with {placeholders} filled; `fallback` when no language has the key. */
export function t(key, values = {}, fallback = undefined) {
  let text = STRINGS[current][key] ?? STRINGS.en[key];
  if (text === undefined) return fallback ?? key;
  if (typeof text === "object") {
    const form = new Intl.PluralRules(current).select(Number(values.count ?? 0));
    text = text[form] ?? text.other;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** Fill every data-i18n element under `root` in the current language. */
export function applyTranslations(root) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-aria-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
  }
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
  }
}
