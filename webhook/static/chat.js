// The /ask chat page: POST /ask/stream, read the server-sent events from the response body, show them.
// Everything from the server is inserted as text (tool output and answers are untrusted), never as HTML.
"use strict";

const TOKEN_KEY = "sre-triage.api-token";
const SESSION_KEY = "sre-triage.ask-session";

const $ = (id) => document.getElementById(id);

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

// Logged in at /login: the browser sends its cookie by itself, so requests go without a bearer header.
let cookieLogin = false;

function authHeaders() { return token() ? { Authorization: `Bearer ${token()}` } : {}; }

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function safeHref(url) {
  if (typeof url !== "string") return null;
  if (url.startsWith("/") && !url.startsWith("//")) return url;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (_) {
    return null;
  }
}

function setState(state) { document.body.dataset.state = state; }

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function askForToken() {
  $("token-panel").hidden = false;
  $("token").focus();
}

function progress(text, className, preview) {
  const item = el("li", text, className);
  if (preview) item.appendChild(el("span", preview, "preview"));
  $("progress").appendChild(item);
  return item;
}

function renderSources(sources) {
  const list = el("ul", null, "sources");
  for (const source of sources) {
    const item = el("li");
    item.appendChild(el("span", source.kind, "kind"));
    const href = safeHref(source.url);
    if (href) {
      const link = el("a", source.name);
      link.href = href;
      item.appendChild(link);
    } else {
      item.appendChild(el("span", source.name));
    }
    if (source.args && Object.keys(source.args).length) {
      item.appendChild(document.createTextNode(" "));
      item.appendChild(el("code", JSON.stringify(source.args)));
    }
    if (source.kind === "tool" && source.ok === false) item.appendChild(el("span", " (failed)", "cut"));
    list.appendChild(item);
  }
  return list;
}

// The answer as the model writes it: answer_delta text appended to a draft, which the final answer replaces.
function appendDelta(turn, data) {
  let draft = turn.querySelector(".answer.draft");
  if (!draft) {
    draft = el("p", "", "answer draft");
    turn.appendChild(draft);
  }
  if (data.reset) draft.textContent = "";
  if (data.text) draft.appendChild(document.createTextNode(data.text));
}

function renderAnswer(turn, data) {
  const draft = turn.querySelector(".answer.draft");
  if (draft) draft.remove();
  const answer = el("p", data.answer, "answer");
  turn.appendChild(answer);
  if (data.sources && data.sources.length) {
    turn.appendChild(el("h3", "Sources"));
    turn.appendChild(renderSources(data.sources));
  }
  if (data.session_id) sessionStorage.setItem(SESSION_KEY, data.session_id);
}

function handleEvent(type, data, turn, tools) {
  if (type === "status") {
    if (data.session_id) sessionStorage.setItem(SESSION_KEY, data.session_id);
    progress(data.message, "status");
  } else if (type === "tool_start") {
    tools.set(data.id, progress(`${data.name} ${JSON.stringify(data.args || {})}`, "tool running"));
  } else if (type === "tool_end") {
    const item = tools.get(data.id) || progress(data.name, "tool");
    item.className = `tool ${data.ok ? "ok" : "failed"}`;
    item.appendChild(document.createTextNode(` — ${data.ok ? "ok" : "failed"}, ${Math.round(data.ms)} ms`));
    if (data.preview) item.appendChild(el("span", data.preview, "preview"));
  } else if (type === "answer_delta") {
    appendDelta(turn, data);
  } else if (type === "answer") {
    renderAnswer(turn, data);
  } else if (type === "error") {
    turn.appendChild(el("p", `Error: ${data.message}`, "cut"));
    showError(data.message);
    setState("error");
  }
}

async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let type = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(type, JSON.parse(data.join("\n")));
    }
  }
}

async function ask(question) {
  const body = { question };
  const session = sessionStorage.getItem(SESSION_KEY);
  if (session) body.session_id = session;
  const response = await fetch("/ask/stream", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...authHeaders() },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error.message || message; } catch (_) { /* not our JSON error */ }
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      cookieLogin = false;
      askForToken();
    }
    if (response.status === 404 && session) {
      sessionStorage.removeItem(SESSION_KEY);  // expired: the next question opens a new conversation
      message += " — the conversation expired; ask again to start a new one";
    }
    throw new Error(message);
  }
  return response;
}

async function onAsk(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  if (!token() && !cookieLogin) { askForToken(); return; }
  showError("");
  $("send").disabled = true;
  $("progress").replaceChildren();
  $("progress-box").hidden = false;
  setState("streaming");
  const turn = el("li", null, "turn");
  turn.appendChild(el("p", question, "question"));
  $("conversation").appendChild(turn);
  const tools = new Map();
  try {
    const response = await ask(question);
    $("question").value = "";
    await readEvents(response, (type, data) => handleEvent(type, data, turn, tools));
    if (document.body.dataset.state === "streaming") setState("done");
  } catch (error) {
    turn.appendChild(el("p", `Error: ${error.message}`, "cut"));
    showError(error.message);
    setState("error");
  } finally {
    $("send").disabled = false;
  }
}

async function loadReports() {
  const response = await fetch("/ask/reports", { headers: authHeaders() });
  const note = $("reports-note");
  if (!response.ok) {
    if (response.status === 401 && !token()) note.textContent = "Log in or enter the API token to list reports.";
    else note.textContent = response.status === 401 ? "The API token was not accepted." : `Reports unavailable (HTTP ${response.status}).`;
    return;
  }
  if (!token()) {
    cookieLogin = true;
    $("token-panel").hidden = true;
  }
  const { reports } = await response.json();
  const list = $("reports");
  list.replaceChildren();
  note.textContent = reports.length ? "" : "No triage reports yet.";
  for (const report of reports) {
    const item = el("li");
    const link = el("a", report.alertname);
    link.href = safeHref(report.url) || "#";
    item.appendChild(link);
    item.appendChild(el("span", `${report.status} · ${report.starts_at.replace("T", " ").slice(0, 16)} UTC`, "meta"));
    if (report.summary) item.appendChild(el("span", report.summary, "meta"));
    list.appendChild(item);
  }
}

function init() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    $("token-panel").hidden = true;
    loadReports().catch((error) => showError(error.message));
  });
  $("ask-form").addEventListener("submit", onAsk);
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("ask-form").requestSubmit();
  });
  $("new-session").addEventListener("click", () => {
    sessionStorage.removeItem(SESSION_KEY);
    $("conversation").replaceChildren();
    $("progress-box").hidden = true;
    setState("idle");
  });
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("reports").replaceChildren();
    askForToken();
  });
  if (!token()) askForToken();
  loadReports().catch((error) => showError(error.message));
}

document.addEventListener("DOMContentLoaded", init);
