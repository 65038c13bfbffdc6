// My page: signs in through the backend-for-frontend (my/{tenant}/login; the browser holds
// only the HttpOnly session cookie), then shows the subscriber's subscriptions and documents
// from My page's JSON API and lets them download a PDF, change payment, stop, restart and
// export their data. Every POST/PUT/DELETE carries the session's X-CSRF-Token.
"use strict";
(function () {
  const texts = JSON.parse(document.getElementById("texts").textContent);
  const tenant = document.body.dataset.tenant;
  const lang = document.body.dataset.lang;
  const api = "/api/my/" + tenant;
  const status = document.getElementById("status");
  const errorBox = document.getElementById("error");
  const locale = lang === "nb" ? "nb-NO" : "en-GB";
  let csrf = null;
  let current = null;
  let roles = {};
  const PROFILE = ["name", "phone", "address", "postal_code", "city"];

  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v; else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }
  function money(minor, currency) {
    return (minor / 100).toLocaleString(locale, { style: "currency", currency: currency,
      currencyDisplay: lang === "nb" ? "narrowSymbol" : "code" });
  }
  function day(iso) {
    if (!iso) return texts.none;
    const [y, m, d] = iso.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(locale,
      { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  }
  function announce(text) { status.textContent = text; }
  function fail(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    errorBox.focus();
  }

  async function call(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = csrf || "";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(api + path, { method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const reasons = (data.errors || []).map((e) => e.reason).join("; ");
      throw new Error(data.detail && data.detail !== "see errors" ? data.detail : (reasons || data.title || response.statusText));
    }
    return data;
  }

  async function start() {
    let session;
    try {
      session = await call("GET", "/session");
    } catch (e) { fail(texts.error_other); return; }
    if (!session.signed_in) {
      $("signed-out").hidden = false;
      const back = "/api/pages/" + tenant + "/my?lang=" + lang;
      $("signin").href = api + "/login?return_to=" + encodeURIComponent(back);
      announce("");
      return;
    }
    csrf = session.csrf;
    $("who").textContent = session.name ? session.name + " (" + session.email + ")" : (session.email || "");
    $("signed-in").hidden = false;
    const subscribers = session.subscribers || [];
    if (!subscribers.length) { $("link").hidden = false; $("account").hidden = true; announce(""); return; }
    $("link").hidden = true;
    $("account").hidden = false;
    const select = $("subscriber");
    select.innerHTML = "";
    roles = Object.fromEntries(subscribers.map((s) => [s.number, s.role]));
    for (const s of subscribers) select.append(el("option", { value: String(s.number), text: s.name + " – " + texts.subscriber + " " + s.number }));
    $("chooser").hidden = subscribers.length < 2;
    if (!current || !subscribers.some((s) => s.number === current)) current = subscribers[0].number;
    select.value = String(current);
    await show();
  }

  async function show() {
    announce(texts.loading);
    errorBox.hidden = true;
    const base = "/subscribers/" + current;
    try {
      const [subs, docs] = await Promise.all([call("GET", base + "/subscriptions"), call("GET", base + "/invoices")]);
      renderSubscriptions(subs.subscriptions || []);
      renderDocuments(docs.documents || []);
      await showProfile();
      announce("");
    } catch (e) { announce(""); fail(e.message); }
  }

  function row(term, value) { return [el("dt", { text: term }), el("dd", { text: value })]; }

  function renderSubscriptions(list) {
    const box = $("subscriptions");
    box.innerHTML = "";
    if (!list.length) { box.append(el("p", { text: texts.no_subscriptions })); return; }
    for (const s of list) {
      const id = "sub-" + s.id.replace(/[^A-Za-z0-9_-]/g, "_");
      const card = el("article", { class: "card", "aria-labelledby": id + "-title", "data-subscription": s.id });
      card.append(el("h3", { id: id + "-title", text: s.plan_name }));
      const dl = el("dl");
      dl.append(...row(texts.status, texts["status_" + s.status] || s.status));
      if (s.current_period) dl.append(...row(texts.period, day(s.current_period.start) + " – " + day(s.current_period.end)));
      else dl.append(...row(texts.started, day(s.start)));
      if (s.price) dl.append(...row(texts.price, money(s.price.amount_minor, s.price.currency)));
      if (s.next_invoice) dl.append(...row(texts.next_invoice, day(s.next_invoice.date) + ": " + money(s.next_invoice.amount_minor, s.next_invoice.currency)));
      if (s.stop_date) dl.append(...row(texts.stops_on, day(s.stop_date)));
      if (s.payment) dl.append(...row(texts.payment_method, texts["method_" + s.payment.type] || texts["pay_" + s.payment.type] || s.payment.type));
      if (s.group) dl.append(...row(texts.group, s.group.used + " / " + s.group.seats));
      card.append(dl);
      const actions = el("div", { class: "actions" });
      if (s.can_stop) actions.append(stopForm(s, id));
      if (s.can_restart) {
        const restart = el("button", { type: "button", text: texts.restart });
        restart.addEventListener("click", () => act(restart, "POST", "/subscriptions/" + encodeURIComponent(s.id) + "/restart", {}, texts.restarted));
        actions.append(restart);
      }
      if (s.can_pause) actions.append(pauseForm(s, id));
      if (s.status !== "ended") actions.append(paymentForm(s, id));
      card.append(actions);
      box.append(card);
    }
  }

  function stopForm(s, id) {
    const form = el("form", { class: "stop", novalidate: true });
    if (s.stop_policy === "optional") {
      form.append(el("div", { class: "field" }, el("label", { for: id + "-on", text: texts.stop_on }),
        el("input", { id: id + "-on", name: "on", type: "date" })));
    } else {
      form.append(el("p", { class: "hint", text: texts.stop_end_of_period }));
    }
    if (s.stop_codes && s.stop_codes.length) {
      const select = el("select", { id: id + "-code", name: "code", required: true });
      for (const code of s.stop_codes) select.append(el("option", { value: code, text: code }));
      form.append(el("div", { class: "field" }, el("label", { for: id + "-code", text: texts.stop_code }), select));
    }
    const button = el("button", { type: "submit", class: "secondary", text: texts.stop });
    form.append(button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      act(button, "POST", "/subscriptions/" + encodeURIComponent(s.id) + "/stop",
        { on: data.get("on") || null, code: data.get("code") || null }, texts.stopped);
    });
    return form;
  }

  function pauseForm(s, id) {
    const form = el("form", { class: "pause", novalidate: true });
    const input = el("input", { id: id + "-restart-on", name: "restart_on", type: "date", required: true, "aria-required": "true" });
    form.append(el("div", { class: "field" }, el("label", { for: id + "-restart-on", text: texts.pause_until }), input));
    const button = el("button", { type: "submit", class: "secondary", text: texts.pause });
    form.append(button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!input.value) { input.setAttribute("aria-invalid", "true"); fail(texts.error_missing); input.focus(); return; }
      act(button, "POST", "/subscriptions/" + encodeURIComponent(s.id) + "/pause", { restart_on: input.value }, texts.paused);
    });
    return form;
  }

  function paymentForm(s, id) {
    const form = el("form", { class: "payment", novalidate: true });
    const select = el("select", { id: id + "-method", name: "method" });
    for (const m of ["email", "ehf", "avtalegiro", "vipps", "card"]) select.append(el("option", { value: m, text: texts["method_" + m] }));
    const now = s.payment ? (s.payment.type === "invoice" ? "email" : s.payment.type) : "email";
    if ([...select.options].some((o) => o.value === now)) select.value = now;
    form.append(el("div", { class: "field" }, el("label", { for: id + "-method", text: texts.change_payment }), select));
    const button = el("button", { type: "submit", class: "secondary", text: texts.save });
    form.append(button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        const answer = await call("PUT", "/subscribers/" + current + "/subscriptions/" + encodeURIComponent(s.id) + "/payment", { method: select.value });
        if (answer.redirect_url) { window.location.assign(answer.redirect_url); return; }
        await show();
        announce(answer.instructions ? texts.payment_changed + " " + answer.instructions : texts.payment_changed);
      } catch (e) { fail(e.message); } finally { button.disabled = false; }
    });
    return form;
  }

  async function act(button, method, path, body, done) {
    button.disabled = true;
    errorBox.hidden = true;
    try {
      await call(method, "/subscribers/" + current + path, body);
      await show();
      announce(done);
    } catch (e) { fail(e.message); } finally { button.disabled = false; }
  }

  function renderDocuments(list) {
    const box = $("invoices");
    box.innerHTML = "";
    if (!list.length) { box.append(el("p", { text: texts.no_invoices })); return; }
    const table = el("table", { class: "documents" });
    table.append(el("caption", { class: "visually-hidden", text: texts.invoices }));
    const head = el("tr");
    for (const h of [texts.document, texts.issued, texts.due, texts.amount, texts.open, texts.status, texts.kid, texts.pdf]) head.append(el("th", { scope: "col", text: h }));
    table.append(el("thead", {}, head));
    const body = el("tbody");
    for (const d of list) {
      const tr = el("tr", { "data-document": String(d.number) });
      tr.append(el("th", { scope: "row", text: (texts["kind_" + d.kind] || d.kind) + " " + d.number }));
      tr.append(el("td", { text: day(d.issued) }), el("td", { text: day(d.due) }),
        el("td", { text: money(d.amount_minor, d.currency) }), el("td", { text: money(d.open_minor, d.currency) }),
        el("td", { text: texts["doc_" + d.status] || d.status }), el("td", { text: d.kid || texts.none }));
      const link = d.pdf ? el("a", { href: d.pdf, download: "", text: texts.pdf,
        "aria-label": texts.pdf + " " + (texts["kind_" + d.kind] || d.kind) + " " + d.number }) : null;
      tr.append(el("td", {}, link));
      body.append(tr);
    }
    table.append(body);
    box.append(table);
  }

  async function showProfile() {
    const holder = roles[current] === "holder";
    $("profile").hidden = !holder;  // a group member's seat has no profile of its own to edit
    if (!holder) return;
    const p = await call("GET", "/subscribers/" + current + "/profile");
    for (const name of PROFILE) $("p-" + name).value = p[name] || "";
    $("p-email").value = p.email || "";
  }

  $("profile-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const body = {};
    for (const name of PROFILE) {
      const value = $("p-" + name).value.trim();
      body[name] = value === "" ? (name === "name" ? undefined : null) : value;
    }
    if (body.name === undefined) { $("p-name").setAttribute("aria-invalid", "true"); fail(texts.error_missing); $("p-name").focus(); return; }
    $("p-name").removeAttribute("aria-invalid");
    try {
      await call("PATCH", "/subscribers/" + current + "/profile", body);
      await showProfile();
      announce(texts.profile_saved);
    } catch (e) { fail(e.message); }
  });

  $("email-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    const email = $("new-email").value.trim();
    if (!email) { $("new-email").setAttribute("aria-invalid", "true"); fail(texts.error_missing); $("new-email").focus(); return; }
    $("new-email").removeAttribute("aria-invalid");
    try {
      await call("POST", "/subscribers/" + current + "/profile/email", { email: email });
      $("email-confirm-form").hidden = false;
      announce(texts.email_code_sent);
      $("email-code").focus();
    } catch (e) { fail(e.message); }
  });
  $("email-confirm-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    try {
      await call("POST", "/subscribers/" + current + "/profile/email/confirm", { code: $("email-code").value.trim() });
      $("email-confirm-form").hidden = true;
      $("new-email").value = "";
      $("email-code").value = "";
      await showProfile();
      announce(texts.email_changed);
    } catch (e) { fail(e.message); }
  });

  async function exportData(button) {
    button.disabled = true;
    try {
      const data = await call("GET", "/subscribers/" + current + "/export");
      const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
      const link = el("a", { href: URL.createObjectURL(blob), download: "abonno-" + tenant + "-" + current + ".json" });
      document.body.append(link);
      link.click();
      link.remove();
      announce(texts.exported);
    } catch (e) { fail(e.message); } finally { button.disabled = false; }
  }

  $("subscriber").addEventListener("change", (event) => { current = Number(event.target.value); show(); });
  $("export").addEventListener("click", (event) => exportData(event.currentTarget));
  $("signout").addEventListener("click", async () => {
    try { await call("POST", "/logout", {}); } catch (e) { /* signed out either way */ }
    window.location.reload();
  });
  $("link-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("POST", "/links", { email: $("link-email").value.trim() });
      announce(texts.code_sent);
      $("confirm-form").hidden = false;
      $("link-code").focus();
    } catch (e) { fail(e.message); }
  });
  $("confirm-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("POST", "/links/confirm", { email: $("link-email").value.trim(), code: $("link-code").value.trim() });
      await start();
    } catch (e) { fail(e.message); }
  });
  start();
})();
