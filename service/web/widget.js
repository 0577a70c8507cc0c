/*
 * Fonti chat widget. Embed with one tag:
 *   <script src="https://fonti.host/widget.js" data-endpoint="https://fonti.host" defer></script>
 * Options (data- attributes): endpoint, lang (it|en), title, position
 * (bottom-right|bottom-left|top-right|top-left), accent (a CSS colour), api-key, history-turns.
 *
 * Plain JavaScript, no dependencies, no build step. Everything lives in a Shadow DOM, so
 * the page's CSS and the widget's CSS do not meet. Text from articles and from the model
 * is only ever inserted with textContent / createTextNode, never parsed as HTML, and a
 * link is made only for an http(s) URL.
 */
(() => {
  "use strict";

  const script = document.currentScript;
  if (!script) return;

  const STRINGS = {
    it: {
      open: "Apri Fonti: domande sulle notizie",
      close: "Chiudi",
      clear: "Nuova conversazione",
      log: "Conversazione con Fonti",
      input: "La tua domanda",
      placeholder: "Fai una domanda sulle notizie…",
      send: "Invia",
      stop: "Ferma",
      retry: "Riprova",
      empty: "Chiedi qualcosa sulle notizie archiviate: ogni risposta cita le testate da cui viene.",
      you: "Tu",
      searching: "Cerco nelle fonti…",
      sources: "Fonti:",
      source: (n, outlet) => `Fonte ${n}: ${outlet}`,
      showQuote: (outlet) => `${outlet}: mostra la citazione`,
      openArticle: "Apri l'articolo",
      closeCard: "Chiudi la citazione",
      abstained: "Nessuna risposta nelle fonti",
      stopped: "Risposta interrotta: le frasi mostrate sono verificate, la risposta è incompleta.",
      busy: (s) => (s ? `Fonti è occupato. Riprova tra ${s} secondi.` : "Fonti è occupato. Riprova tra poco."),
      unreachable: (u) => `Impossibile raggiungere Fonti (${u}). Controlla la connessione e riprova.`,
      refused: (o) =>
        `Questa pagina (${o}) non è autorizzata a usare Fonti. ` +
        "Chiedi all'amministratore di aggiungerla a FONTI_CORS_ORIGINS.",
      auth: "Fonti ha rifiutato la chiave API (data-api-key).",
      rejected: (m) => `Domanda rifiutata: ${m}`,
      failed: (s) => `Errore del servizio (HTTP ${s}). Riprova.`,
      broken: "La risposta si è interrotta. Riprova.",
      streamError: (m) => `Errore durante la risposta: ${m}`,
    },
    en: {
      open: "Open Fonti: questions about the news",
      close: "Close",
      clear: "New conversation",
      log: "Conversation with Fonti",
      input: "Your question",
      placeholder: "Ask about the news…",
      send: "Send",
      stop: "Stop",
      retry: "Retry",
      empty: "Ask about the stored news: every answer cites the outlets it comes from.",
      you: "You",
      searching: "Searching the sources…",
      sources: "Sources:",
      source: (n, outlet) => `Source ${n}: ${outlet}`,
      showQuote: (outlet) => `${outlet}: show the quote`,
      openArticle: "Open the article",
      closeCard: "Close the quote",
      abstained: "No answer in the sources",
      stopped: "Answer stopped: the sentences shown are verified, the answer is incomplete.",
      busy: (s) => (s ? `Fonti is busy. Try again in ${s} seconds.` : "Fonti is busy. Try again shortly."),
      unreachable: (u) => `Cannot reach Fonti (${u}). Check the connection and try again.`,
      refused: (o) =>
        `This page (${o}) is not allowed to use Fonti. ` +
        "Ask the administrator to add it to FONTI_CORS_ORIGINS.",
      auth: "Fonti refused the API key (data-api-key).",
      rejected: (m) => `Question refused: ${m}`,
      failed: (s) => `The service failed (HTTP ${s}). Try again.`,
      broken: "The answer was cut off. Try again.",
      streamError: (m) => `Error while answering: ${m}`,
    },
  };

  // ---- options ---------------------------------------------------------------------------

  const data = script.dataset;
  const pick = (lang) => (lang || "").toLowerCase().slice(0, 2);
  const lang = [data.lang, document.documentElement.lang, navigator.language]
    .map(pick)
    .find((l) => l in STRINGS) || "it";
  const T = STRINGS[lang];
  const endpoint = (data.endpoint || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  const positions = ["bottom-right", "bottom-left", "top-right", "top-left"];
  const position = positions.includes(data.position) ? data.position : "bottom-right";
  const accent = data.accent && CSS.supports("color", data.accent) ? data.accent : "#0b5cad";
  const title = data.title || "Fonti";
  const apiKey = data.apiKey || "";
  let maxHistory = Number.parseInt(data.historyTurns || "10", 10);
  if (!(maxHistory >= 0)) maxHistory = 10;

  // ---- small DOM helpers (text only) -----------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v == null) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children) {
      if (child != null) node.append(child); // strings become text nodes
    }
    return node;
  }

  function safeUrl(url) {
    try {
      const u = new URL(String(url));
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch {
      return null;
    }
  }

  // ---- styles ----------------------------------------------------------------------------

  const [vert, horiz] = position.split("-");
  const CSS_TEXT = `
:host { all: initial !important; display: block !important; position: static !important; }
.root { --accent: ${accent}; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
  Arial, sans-serif; color: #1d2430; -webkit-text-size-adjust: 100%; }
.root *, .root *::before, .root *::after { box-sizing: border-box; }
button { font: inherit; color: inherit; cursor: pointer; -webkit-tap-highlight-color: transparent; }
.launcher { position: fixed; ${vert}: 20px; ${horiz}: 20px; z-index: 2147483000; width: 56px; height: 56px;
  border: 0; border-radius: 50%; background: var(--accent); color: #fff; display: flex; align-items: center;
  justify-content: center; box-shadow: 0 4px 14px rgba(0,0,0,.25); padding: 0; }
.launcher svg { width: 28px; height: 28px; fill: currentColor; }
.panel { position: fixed; ${vert}: 88px; ${horiz}: 20px; z-index: 2147483001; width: 390px; height: 600px;
  max-width: calc(100vw - 40px); max-height: calc(100vh - 108px); display: flex; flex-direction: column;
  background: #fff; border-radius: 12px; overflow: hidden; box-shadow: 0 10px 40px rgba(0,0,0,.28);
  border: 1px solid #d6dbe3; }
.panel[hidden] { display: none; }
header { display: flex; align-items: center; gap: 6px; padding: 10px 10px 10px 16px; background: var(--accent);
  color: #fff; }
h2 { flex: 1; margin: 0; font-size: 16px; font-weight: 600; line-height: 1.3; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
.hbtn { background: transparent; border: 1px solid rgba(255,255,255,.5); border-radius: 6px; color: #fff;
  padding: 4px 8px; font-size: 12px; }
.hbtn.x { font-size: 18px; line-height: 1; padding: 3px 9px; }
.log { flex: 1; overflow-y: auto; padding: 14px; display: flex; flex-direction: column; gap: 12px;
  background: #f5f7fa; }
.hint { color: #5b6676; font-size: 13px; margin: auto 8px; text-align: center; }
.msg { max-width: 92%; padding: 9px 12px; border-radius: 10px; word-wrap: break-word; overflow-wrap: anywhere; }
.user { align-self: flex-end; background: var(--accent); color: #fff; white-space: pre-wrap; }
.bot { align-self: flex-start; background: #fff; border: 1px solid #dde2ea; }
.text { white-space: pre-wrap; margin: 0; }
.streaming .text::after { content: "▍"; color: var(--accent); animation: blink 1s steps(1) infinite; }
@keyframes blink { 50% { opacity: 0; } }
.pending { color: #5b6676; font-style: italic; }
.cite { display: inline-block; min-width: 1.6em; margin: 0 1px; padding: 0 4px; border: 1px solid var(--accent);
  border-radius: 8px; background: #eef3fb; color: #0d2f5a; font-size: 11px; line-height: 16px;
  vertical-align: 2px; text-align: center; }
.cite[aria-expanded="true"] { background: var(--accent); color: #fff; }
.sources { display: flex; flex-wrap: wrap; align-items: center; gap: 4px; margin-top: 8px; font-size: 12px;
  color: #5b6676; }
.chip { border: 1px solid #c9d1dc; background: #f5f7fa; border-radius: 12px; padding: 1px 8px; font-size: 12px;
  color: #1d2430; }
.provisional .chip { opacity: .6; cursor: default; }
.card { margin-top: 8px; padding: 10px 12px; border-left: 3px solid var(--accent); background: #f5f7fa;
  border-radius: 0 8px 8px 0; position: relative; }
.card:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
.card .outlet { font-weight: 700; margin: 0 24px 2px 0; }
.card .title { margin: 0 0 6px; color: #36404f; }
.card blockquote { margin: 0 0 6px; padding: 0; font-style: italic; white-space: pre-wrap; }
.card a { color: #0b4f99; }
.card .cclose { position: absolute; top: 4px; right: 4px; border: 0; background: transparent; font-size: 16px;
  padding: 2px 6px; color: #5b6676; }
.abstained { background: #f1f3f6; border-style: dashed; }
.label { display: block; font-size: 12px; font-weight: 600; color: #5b6676; margin-bottom: 3px; }
.error { background: #fdecec; border: 1px solid #f3b4b4; color: #7a1717; }
.stopped .label { color: #8a3b0c; }
.actions { margin-top: 6px; }
.abtn { border: 1px solid currentColor; background: #fff; border-radius: 6px; padding: 3px 10px; font-size: 13px; }
form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #dde2ea; background: #fff; margin: 0; }
textarea { flex: 1; resize: none; min-height: 40px; max-height: 120px; padding: 9px 10px; border: 1px solid #b9c2cf;
  border-radius: 8px; font: inherit; color: inherit; background: #fff; }
textarea:focus, button:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
.send, .stop { border: 0; border-radius: 8px; padding: 0 14px; background: var(--accent); color: #fff;
  font-weight: 600; }
.stop { background: #5b6676; }
.send:disabled { opacity: .5; cursor: default; }
[hidden] { display: none !important; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 520px) {
  .panel { inset: 0; width: 100%; height: 100%; max-width: none; max-height: none; border-radius: 0; border: 0; }
  textarea { font-size: 16px; }
}`;

  // ---- the widget --------------------------------------------------------------------------

  function mount() {
    const host = document.createElement("fonti-widget");
    const shadow = host.attachShadow({ mode: "open" });
    if ("adoptedStyleSheets" in shadow && typeof CSSStyleSheet === "function") {
      const sheet = new CSSStyleSheet(); // not an inline <style>: works under a strict page CSP
      sheet.replaceSync(CSS_TEXT);
      shadow.adoptedStyleSheets = [sheet];
    } else {
      shadow.append(el("style", { text: CSS_TEXT }));
    }

    const icon = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("aria-hidden", "true");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z");
    icon.append(path);

    const launcher = el("button", {
      class: "launcher", type: "button", "aria-label": T.open, "aria-expanded": "false",
      "aria-controls": "fonti-panel", title: title,
    }, icon);
    const heading = el("h2", { id: "fonti-title", text: title });
    const clearBtn = el("button", { class: "hbtn", type: "button", text: T.clear });
    const closeBtn = el("button", { class: "hbtn x", type: "button", "aria-label": T.close, text: "×" });
    const log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": T.log, tabindex: "0" });
    const hint = el("p", { class: "hint", text: T.empty });
    const input = el("textarea", { rows: "1", "aria-label": T.input, placeholder: T.placeholder });
    const sendBtn = el("button", { class: "send", type: "submit", text: T.send });
    const stopBtn = el("button", { class: "stop", type: "button", text: T.stop, hidden: true });
    const form = el("form", { "aria-label": T.input }, input, sendBtn, stopBtn);
    const panel = el("section", {
      class: "panel", id: "fonti-panel", role: "dialog", "aria-modal": "false",
      "aria-labelledby": "fonti-title", hidden: true,
    }, el("header", null, heading, clearBtn, closeBtn), log, form);
    const root = el("div", { class: "root", lang }, launcher, panel);
    shadow.append(root);
    log.append(hint);
    document.body.append(host);

    const turns = []; // completed exchanges sent as history: {role, content}
    let controller = null;
    let openCard = null; // {card, marker}

    function setOpen(open) {
      panel.hidden = !open;
      launcher.setAttribute("aria-expanded", String(open));
      (open ? input : launcher).focus();
    }

    launcher.addEventListener("click", () => setOpen(panel.hidden));
    closeBtn.addEventListener("click", () => setOpen(false));
    clearBtn.addEventListener("click", () => {
      if (controller) controller.abort();
      turns.length = 0;
      log.replaceChildren(hint);
      input.focus();
    });
    root.addEventListener("keydown", (ev) => {
      if (ev.key !== "Escape" || panel.hidden) return;
      ev.preventDefault();
      if (openCard) {
        const { marker } = openCard;
        closeCardEl();
        marker.focus();
      } else {
        setOpen(false);
      }
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
    input.addEventListener("input", () => {
      input.style.height = "auto";
      input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
    });
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const question = input.value.trim();
      if (!question || controller) return;
      input.value = "";
      input.style.height = "";
      hint.remove();
      log.append(el("div", { class: "msg user" }, el("span", { class: "sr", text: T.you + ": " }), question));
      ask(question, turns.slice());
    });
    stopBtn.addEventListener("click", () => controller && controller.abort());

    function scrollDown(force) {
      if (force || log.scrollHeight - log.scrollTop - log.clientHeight < 80) log.scrollTop = log.scrollHeight;
    }

    function setBusy(busy) {
      const hadFocus = shadow.activeElement === stopBtn;
      sendBtn.hidden = busy;
      stopBtn.hidden = !busy;
      // Typing the next question while an answer streams is fine; only a pressed Stop loses focus.
      if (!busy && hadFocus && !panel.hidden) input.focus({ preventScroll: true });
    }

    // ---- one question -----------------------------------------------------------------

    async function ask(question, history, msg) {
      msg = msg || el("div", { class: "msg bot" });
      msg.className = "msg bot streaming";
      msg.setAttribute("aria-busy", "true");
      const textNode = document.createTextNode("");
      const text = el("p", { class: "text" }, textNode);
      const pending = el("span", { class: "pending", text: T.searching });
      const provisional = el("div", { class: "sources provisional", hidden: true }, T.sources);
      msg.replaceChildren(pending, text, provisional);
      if (!msg.isConnected) log.append(msg);
      scrollDown(true);
      controller = new AbortController();
      setBusy(true);
      try {
        const final = await request(question, history, controller.signal, (kind, payload) => {
          if (kind === "token") {
            pending.remove();
            textNode.appendData(String(payload.text || ""));
          } else if (kind === "citation") {
            provisional.hidden = false;
            provisional.append(el("span", { class: "chip", text: String(payload.outlet || "") }));
          }
          scrollDown(false);
        });
        renderAnswer(msg, final);
        turns.push({ role: "user", content: question }, { role: "assistant", content: String(final.answer) });
      } catch (err) {
        const stopped = err && err.name === "AbortError";
        const failure = stopped ? { message: T.stopped, retryable: true, stopped } : describe(err);
        renderFailure(msg, failure, textNode.data, () => ask(question, history, msg));
      } finally {
        msg.classList.remove("streaming");
        msg.removeAttribute("aria-busy");
        controller = null;
        setBusy(false);
        scrollDown(false);
      }
    }

    async function request(question, history, signal, onEvent, retried) {
      const body = { question, stream: true };
      if (history.length && maxHistory > 0) body.history = history.slice(-maxHistory);
      const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
      if (apiKey) headers.Authorization = "Bearer " + apiKey;
      let res;
      try {
        res = await fetch(endpoint + "/v1/ask", {
          method: "POST", headers, body: JSON.stringify(body), signal, mode: "cors", credentials: "omit",
        });
      } catch (err) {
        if (err && err.name === "AbortError") throw err;
        throw await networkFailure();
      }
      if (!res.ok) {
        const info = await res.json().catch(() => ({}));
        const detail = info && info.detail;
        if (res.status === 422 && !retried && detail && detail.field === "history" && detail.limit >= 0) {
          maxHistory = detail.limit; // the service allows fewer turns than we sent: trim and resend once
          return request(question, history, signal, onEvent, true);
        }
        throw httpFailure(res, info);
      }
      if (!(res.headers.get("content-type") || "").includes("text/event-stream")) return res.json();
      for await (const ev of sseEvents(res.body)) {
        let payload;
        try {
          payload = JSON.parse(ev.data);
        } catch {
          continue;
        }
        if (ev.event === "done") return payload;
        if (ev.event === "error") throw new FontiError(T.streamError(String(payload.error || "")), true);
        onEvent(ev.event, payload);
      }
      throw new FontiError(T.broken, true);
    }

    // A failed fetch does not say why. A no-cors request still reaches a running server
    // when CORS is what refused us, so it tells "not allowed" from "not reachable".
    async function networkFailure() {
      const crossOrigin = new URL(endpoint, location.href).origin !== location.origin;
      if (crossOrigin) {
        try {
          await fetch(endpoint + "/healthz", { mode: "no-cors", credentials: "omit", cache: "no-store" });
          return new FontiError(T.refused(location.origin), false);
        } catch {
          /* unreachable */
        }
      }
      return new FontiError(T.unreachable(endpoint), true);
    }

    function httpFailure(res, info) {
      const message = info && typeof info.error === "string" ? info.error : "";
      if (res.status === 503 || res.status === 429) {
        const wait = Number.parseInt(res.headers.get("Retry-After") || "", 10);
        return new FontiError(T.busy(wait > 0 ? wait : 0), true, "busy");
      }
      if (res.status === 401 || res.status === 403) return new FontiError(T.auth, false);
      if (res.status >= 400 && res.status < 500 && message) return new FontiError(T.rejected(message), false);
      return new FontiError(T.failed(res.status), true);
    }

    function describe(err) {
      return err instanceof FontiError ? err : new FontiError(T.broken, true);
    }

    // ---- rendering ----------------------------------------------------------------------

    function renderAnswer(msg, answer) {
      const cites = new Map();
      for (const c of Array.isArray(answer.citations) ? answer.citations : []) cites.set(Number(c.id ?? c.number), c);
      const text = el("p", { class: "text" });
      const parts = [];
      if (answer.abstained) {
        msg.className = "msg bot abstained";
        parts.push(el("span", { class: "label", text: T.abstained }));
        text.append(String(answer.answer || ""));
      } else {
        msg.className = "msg bot answer";
        const sentences = Array.isArray(answer.sentences) ? answer.sentences : null;
        if (sentences && sentences.length) {
          sentences.forEach((s, i) => {
            if (i) text.append(" ");
            text.append(sentenceEl(s, cites, msg));
          });
        } else {
          appendMarked(text, String(answer.answer || ""), cites, msg);
        }
      }
      parts.push(text);
      if (cites.size) parts.push(outletList(cites, msg));
      msg.replaceChildren(...parts);
    }

    function sentenceEl(s, cites, msg) {
      const span = el("span", { class: "sentence" });
      const body = String(s.text || "");
      appendMarked(span, body, cites, msg);
      const refs = Array.isArray(s.citations) ? s.citations : [];
      if (!/\[\d+\]/.test(body)) {
        for (const n of refs) if (cites.has(Number(n))) span.append(marker(Number(n), cites, msg));
      }
      return span;
    }

    function appendMarked(parent, text, cites, msg) {
      const re = /\[(\d+)\]/g;
      let last = 0;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        const n = Number(m[1]);
        if (!cites.has(n)) continue;
        if (m.index > last) parent.append(text.slice(last, m.index));
        parent.append(marker(n, cites, msg));
        last = m.index + m[0].length;
      }
      if (last < text.length) parent.append(text.slice(last));
    }

    function marker(n, cites, msg) {
      const c = cites.get(n);
      const btn = el("button", {
        class: "cite", type: "button", "aria-expanded": "false", "data-cite": String(n),
        "aria-label": T.source(n, String(c.outlet || "")), text: String(n),
      });
      btn.addEventListener("click", () => toggleCard(msg, btn, c));
      return btn;
    }

    function outletList(cites, msg) {
      const row = el("div", { class: "sources" }, el("span", { text: T.sources }));
      const seen = new Set();
      for (const [n, c] of cites) {
        const outlet = String(c.outlet || "");
        if (seen.has(outlet)) continue;
        seen.add(outlet);
        const chip = el("button", { class: "chip", type: "button", "aria-label": T.showQuote(outlet), text: outlet });
        chip.addEventListener("click", () => {
          const btn = msg.querySelector(`.cite[data-cite="${n}"]`) || chip;
          toggleCard(msg, btn, c);
        });
        row.append(chip);
      }
      return row;
    }

    function closeCardEl() {
      if (!openCard) return;
      openCard.marker.setAttribute("aria-expanded", "false");
      openCard.card.remove();
      openCard = null;
    }

    function toggleCard(msg, marker, c) {
      const same = openCard && openCard.marker === marker;
      closeCardEl();
      if (same) return;
      const card = el("div", { class: "card", role: "group", tabindex: "-1", "aria-label": T.source(c.id ?? "", String(c.outlet || "")) },
        el("p", { class: "outlet", text: String(c.outlet || "") }),
        c.title ? el("p", { class: "title", text: String(c.title) }) : null,
        c.quote ? el("blockquote", { text: String(c.quote) }) : null,
      );
      const href = c.url ? safeUrl(c.url) : null;
      if (href) {
        card.append(el("a", { href, target: "_blank", rel: "noopener noreferrer", text: T.openArticle }));
      }
      const x = el("button", { class: "cclose", type: "button", "aria-label": T.closeCard, text: "×" });
      x.addEventListener("click", () => {
        closeCardEl();
        marker.focus();
      });
      card.append(x);
      marker.setAttribute("aria-expanded", "true");
      const sources = msg.querySelector(".sources");
      if (sources) sources.after(card);
      else msg.append(card);
      openCard = { card, marker };
      card.focus({ preventScroll: true });
      card.scrollIntoView({ block: "nearest" });
    }

    function renderFailure(msg, failure, partial, retry) {
      const stopped = Boolean(failure.stopped);
      msg.className = stopped ? "msg bot stopped" : "msg bot error";
      const parts = [];
      if (partial) parts.push(el("p", { class: "text", text: partial }));
      const note = el("p", { class: stopped ? "label" : "text", text: failure.message });
      if (!stopped) note.setAttribute("role", "alert");
      parts.push(note);
      if (failure.retryable) {
        const btn = el("button", { class: "abtn", type: "button", text: T.retry });
        btn.addEventListener("click", () => {
          if (!controller) retry();
        });
        parts.push(el("div", { class: "actions" }, btn));
      }
      msg.replaceChildren(...parts);
    }
  }

  class FontiError extends Error {
    constructor(message, retryable, kind) {
      super(message);
      this.retryable = retryable;
      this.kind = kind || "error";
    }
  }

  // Server-sent events from a fetch body (EventSource cannot POST).
  async function* sseEvents(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const parse = (block) => {
      let event = "message";
      const lines = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? "" : line.slice(i + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") event = value;
        else if (field === "data") lines.push(value);
      }
      return lines.length ? { event, data: lines.join("\n") } : null;
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        // CRLF or CR line ends; a CR at the end may be half of a CRLF split across reads.
        const keep = buffer.endsWith("\r") ? "\r" : "";
        buffer = buffer.slice(0, buffer.length - keep.length).replace(/\r\n?/g, "\n") + keep;
        for (let i = buffer.indexOf("\n\n"); i >= 0; i = buffer.indexOf("\n\n")) {
          const ev = parse(buffer.slice(0, i));
          buffer = buffer.slice(i + 2);
          if (ev) yield ev;
        }
      }
      buffer += decoder.decode();
      const ev = parse(buffer.replace(/\r\n?/g, "\n"));
      if (ev) yield ev;
    } finally {
      reader.cancel().catch(() => {}); // stop the download when we leave early (done, error, stop)
    }
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
})();
