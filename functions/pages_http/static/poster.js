// The sales poster's order form: posts the form as JSON to salesposter/{tenant}/orders, then
// goes on to the payment step (Vipps or card: the provider's redirect_url) or shows the
// receipt (invoice: amount, KID, account, due date). No framework; works with the keyboard;
// errors are announced and each field's error is tied to it (aria-invalid, aria-describedby).
"use strict";
(function () {
  const texts = JSON.parse(document.getElementById("texts").textContent);
  const form = document.getElementById("order");
  const errors = document.getElementById("form-errors");
  const progress = document.getElementById("progress");
  const button = document.getElementById("submit");
  const lang = document.documentElement.lang;
  // One identity per order: a retried post (a lost answer, a double click) is the same order.
  const orderRef = "p" + (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/[^A-Za-z0-9]/g, "");

  // A reader signed in on My page orders as themself: the order carries the session's CSRF
  // token, so a new subscriber it makes is linked to their login (the cookie alone, as any
  // other site's form post would send it, orders anonymously).
  const tenant = form.action.split("/api/salesposter/")[1].split("/")[0];
  const session = fetch("/api/my/" + tenant + "/session", { credentials: "same-origin", headers: { "Accept": "application/json" } })
    .then((r) => (r.ok ? r.json() : {})).catch(() => ({}));

  function money(minor, currency) {
    const value = (minor / 100).toLocaleString(lang === "nb" ? "nb-NO" : "en-GB",
      { style: "currency", currency: currency, currencyDisplay: lang === "nb" ? "narrowSymbol" : "code" });
    return value;
  }

  function day(iso) {
    const [y, m, d] = iso.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(lang === "nb" ? "nb-NO" : "en-GB",
      { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" });
  }

  function clearErrors() {
    errors.hidden = true;
    errors.textContent = "";
    form.querySelectorAll("[aria-invalid]").forEach((input) => {
      input.removeAttribute("aria-invalid");
      const message = document.getElementById(input.id + "-error");
      if (message) { message.hidden = true; message.textContent = ""; }
      const hint = document.getElementById(input.id + "-hint");
      input.setAttribute("aria-describedby", hint ? hint.id : "");
    });
  }

  function markField(name, reason) {
    const input = form.elements.namedItem(name);
    if (!input || !input.id) return false;
    input.setAttribute("aria-invalid", "true");
    const message = document.getElementById(input.id + "-error");
    if (message) {
      message.textContent = reason;
      message.hidden = false;
      const hint = document.getElementById(input.id + "-hint");
      input.setAttribute("aria-describedby", (hint ? hint.id + " " : "") + message.id);
    }
    return true;
  }

  function showError(title, detail) {
    errors.innerHTML = "";
    const strong = document.createElement("strong");
    strong.textContent = title;
    const p = document.createElement("p");
    p.textContent = detail;
    errors.append(strong, p);
    errors.hidden = false;
    const first = form.querySelector("[aria-invalid=true]");
    (first || errors).focus();
  }

  function body() {
    const data = { order_ref: orderRef };
    for (const [key, value] of new FormData(form).entries()) {
      const text = String(value).trim();
      if (text !== "") data[key] = text;
    }
    if (data.organization_number) data.organization_number = data.organization_number.replace(/\s+/g, "");
    return data;
  }

  function missing(data) {
    let any = false;
    form.querySelectorAll("[required]").forEach((input) => {
      if (!data[input.name]) any = markField(input.name, texts.error_missing) || any;
    });
    return any;
  }

  function receipt(answer) {
    const section = document.getElementById("receipt");
    const list = document.getElementById("receipt-payment");
    list.innerHTML = "";
    if (answer.status === "pending_confirmation") {
      document.getElementById("receipt-title").textContent = texts.pending_title;
      document.getElementById("receipt-text").textContent = texts.pending_text;
    } else {
      document.getElementById("receipt-title").textContent = texts.receipt_title;
      document.getElementById("receipt-text").textContent = texts.receipt_text;
      const p = answer.payment;
      if (p) {
        const rows = [[texts.amount, money(p.amount_minor, p.currency), "amount"], [texts.kid, p.kid, "kid"],
                      [texts.account, p.account || "", "account"], [texts.due, day(p.due_date), "due"]];
        for (const [term, value, id] of rows) {
          if (!value) continue;
          const dt = document.createElement("dt");
          dt.textContent = term;
          const dd = document.createElement("dd");
          dd.textContent = value;
          dd.dataset.testid = id;
          list.append(dt, dd);
        }
      }
    }
    document.getElementById("order-section").hidden = true;
    section.hidden = false;
    section.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const data = body();
    if (missing(data)) { showError(texts.error_title, texts.error_fields); return; }
    button.disabled = true;
    progress.textContent = texts.sending;
    try {
      const headers = { "Content-Type": "application/json", "Accept": "application/json" };
      const me = await session;
      if (me.signed_in && me.csrf) headers["X-CSRF-Token"] = me.csrf;
      const response = await fetch(form.action, {
        method: "POST", headers: headers, body: JSON.stringify(data), credentials: "same-origin",
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok && answer.status === "awaiting_payment" && answer.redirect_url) {
        progress.textContent = texts.to_payment;
        window.location.assign(answer.redirect_url);
        return;
      }
      if (response.ok) { progress.textContent = ""; receipt(answer); return; }
      progress.textContent = "";
      if (response.status === 422 || response.status === 400) {
        for (const e of answer.errors || []) markField(String(e.field).split(".").pop(), e.reason);
        showError(texts.error_title, answer.errors ? texts.error_fields : (answer.detail || texts.error_other));
      } else if (response.status === 429 || response.status === 503) {
        showError(texts.error_title, texts.error_busy);
      } else {
        showError(texts.error_title, answer.detail || texts.error_other);
      }
    } catch (e) {
      progress.textContent = "";
      showError(texts.error_title, texts.error_other);
    } finally {
      button.disabled = false;
    }
  });
})();
