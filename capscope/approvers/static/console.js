"use strict";
// The approval console. Everything shown comes from the server as JSON and
// is put on the page with textContent, never as HTML: tool arguments are
// whatever a model passed, and must stay text.
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const pendingList = document.getElementById("pending");
  const feedBody = document.getElementById("feed");
  const runFilter = document.getElementById("run-filter");
  const workerFilter = document.getElementById("worker-filter");
  const connection = document.getElementById("connection");
  const cards = new Map(); // id -> <li>
  const runs = new Set();
  const workers = new Set();
  const FEED_ROWS = 200;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function remember(set, select, value) {
    if (!value || set.has(value)) return;
    set.add(value);
    const option = el("option", null, value);
    option.value = value;
    select.appendChild(option);
  }

  function visible(run, worker) {
    return (!runFilter.value || runFilter.value === run) &&
      (!workerFilter.value || workerFilter.value === worker);
  }

  function applyFilters() {
    for (const node of pendingList.children) {
      node.hidden = !visible(node.dataset.run, node.dataset.worker);
    }
    for (const row of feedBody.children) {
      row.hidden = !visible(row.dataset.run, row.dataset.worker);
    }
    const shown = [...pendingList.children].filter((n) => !n.hidden).length;
    document.getElementById("pending-count").textContent = String(shown);
    document.getElementById("empty").hidden = shown > 0;
  }

  function attribution(item) {
    const who = el("div", "who");
    for (const [name, key] of [["worker", "worker_id"], ["run", "run_id"],
                               ["workflow", "workflow_id"], ["stage", "stage_id"]]) {
      if (!item[key]) continue;
      const chip = el("span", "chip " + name);
      chip.appendChild(el("span", "k", name));
      chip.appendChild(el("span", "v", item[key]));
      who.appendChild(chip);
    }
    for (const [key, value] of Object.entries(item.attributes || {})) {
      const chip = el("span", "chip attr");
      chip.appendChild(el("span", "k", key));
      chip.appendChild(el("span", "v", value));
      who.appendChild(chip);
    }
    if (!who.children.length) who.appendChild(el("span", "chip none", "no attribution"));
    return who;
  }

  function card(item) {
    const li = el("li", "card");
    li.dataset.id = item.id;
    li.dataset.run = item.run_id || "";
    li.dataset.worker = item.worker_id || "";
    li.dataset.expires = item.expires_at === null ? "" : String(item.expires_at);
    const head = el("div", "head");
    head.appendChild(el("span", "number", "#" + item.number));
    head.appendChild(el("span", "tool", item.tool));
    head.appendChild(el("span", "expires"));
    li.appendChild(head);
    li.appendChild(attribution(item));
    li.appendChild(el("div", "reason", item.reason));
    if (item.command) {
      li.appendChild(el("pre", "line", item.command.line));
      const labels = el("div", "labels");
      for (const label of item.command.labels) labels.appendChild(el("span", "label", label));
      if (item.command.labels.length) li.appendChild(labels);
    } else if (item.arguments.length) {
      const table = el("table", "args");
      for (const [name, value] of item.arguments) {
        const row = el("tr");
        row.appendChild(el("th", null, name));
        const cell = el("td");
        cell.appendChild(el("pre", null, value));
        row.appendChild(cell);
        table.appendChild(row);
      }
      li.appendChild(table);
    }
    if (item.rule) li.appendChild(el("div", "rule", "rule: " + item.rule));
    const actions = el("div", "actions");
    for (const [answer, label] of [["once", "Allow once"],
                                   ["always", "Allow always for this worker"],
                                   ["deny", "Deny"]]) {
      const button = el("button", "answer " + answer, label);
      button.type = "button";
      button.dataset.answer = answer;
      button.addEventListener("click", () => send(li, item.id, answer));
      actions.appendChild(button);
    }
    actions.appendChild(el("span", "status"));
    li.appendChild(actions);
    return li;
  }

  async function send(li, id, answer) {
    const buttons = li.querySelectorAll("button");
    const status = li.querySelector(".status");
    buttons.forEach((b) => { b.disabled = true; });
    status.textContent = "sending…";
    try {
      const response = await fetch("api/requests/" + encodeURIComponent(id), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ answer: answer }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        status.textContent = "sent: " + answer;
        li.classList.add("answered");
      } else {
        status.textContent = "refused (" + response.status + "): " + (body.error || "");
        li.classList.add("refused");
      }
    } catch (error) {
      status.textContent = "not sent: " + error;
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function showPending(items) {
    const ids = new Set(items.map((item) => item.id));
    for (const [id, node] of cards) {
      if (!ids.has(id)) { node.remove(); cards.delete(id); }
    }
    for (const item of items) {
      remember(runs, runFilter, item.run_id);
      remember(workers, workerFilter, item.worker_id);
      if (!cards.has(item.id)) {
        const node = card(item);
        cards.set(item.id, node);
        pendingList.appendChild(node);
      }
    }
    tick();
    applyFilters();
  }

  function showFeed(records) {
    for (const record of records) {
      remember(runs, runFilter, record.run_id);
      remember(workers, workerFilter, record.worker_id);
      const row = el("tr", "action-" + record.action);
      row.dataset.run = record.run_id || "";
      row.dataset.worker = record.worker_id || "";
      const when = new Date(record.time * 1000);
      for (const value of [when.toLocaleTimeString(), record.action, record.tool,
                           record.gate || "", record.run_id || "", record.worker_id || "",
                           record.reason]) {
        row.appendChild(el("td", null, value));
      }
      feedBody.insertBefore(row, feedBody.firstChild);
    }
    while (feedBody.children.length > FEED_ROWS) feedBody.lastChild.remove();
    applyFilters();
  }

  function tick() {
    const now = Date.now() / 1000;
    for (const node of cards.values()) {
      const expires = node.dataset.expires;
      const left = expires ? Math.max(0, Math.round(Number(expires) - now)) : null;
      node.querySelector(".expires").textContent =
        left === null ? "no time limit" : "denied in " + left + " s";
    }
  }

  runFilter.addEventListener("change", applyFilters);
  workerFilter.addEventListener("change", applyFilters);
  setInterval(tick, 1000);

  const source = new EventSource("api/events");
  source.addEventListener("open", () => {
    connection.textContent = "live";
    connection.className = "connection live";
  });
  source.addEventListener("pending", (e) => showPending(JSON.parse(e.data)));
  source.addEventListener("feed", (e) => showFeed(JSON.parse(e.data)));
  source.addEventListener("closed", () => {
    connection.textContent = "console closed";
    connection.className = "connection closed";
    source.close();
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      connection.textContent = "disconnected";
      connection.className = "connection closed";
    } else {
      connection.textContent = "reconnecting…";
      connection.className = "connection";
    }
  });
  document.body.dataset.ready = "true";
})();
