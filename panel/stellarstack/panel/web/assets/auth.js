// The panel's pre-login pages: each form posts JSON to the same API that clients use.
"use strict";

function csrfCookie() {
  const match = document.cookie.match(/(?:^|; )stellarstack_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function call(method, url, body, csrfToken) {
  const headers = { "Content-Type": "application/json" };
  // Cookie-authenticated writes must echo the CSRF token; other sites can neither read it
  // nor set this header.
  const token = csrfToken || csrfCookie();
  if (token) headers["X-CSRF-Token"] = token;
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
  }
  return { status: response.status, ok: response.ok, data };
}

function values(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function showError(form, message, field) {
  const box = form.querySelector(".error");
  box.textContent = message;
  box.hidden = false;
  if (field) {
    const input = form.elements.namedItem(field.replace(/^body\./, ""));
    if (input && input.focus) input.focus();
  }
}

function showFailure(form, result) {
  const error = result.data && result.data.error;
  if (error) {
    showError(form, error.message, error.field);
  } else {
    showError(form, `The request failed (HTTP ${result.status}).`);
  }
}

function clearError(form) {
  const box = form.querySelector(".error");
  box.hidden = true;
  box.textContent = "";
}

// Runs `action` on submit with the button disabled, so a double click sends one request.
function onSubmit(form, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await action(values(form));
    } catch (error) {
      showError(form, `The panel could not be reached: ${error.message}`);
    } finally {
      button.disabled = false;
    }
  });
}

function tokenFromAddress() {
  return new URLSearchParams(window.location.search).get("token") || "";
}

function nextPage() {
  const target = new URLSearchParams(window.location.search).get("next") || "/";
  // Only paths of this panel: never an absolute or protocol-relative address.
  return target.startsWith("/") && !target.startsWith("//") ? target : "/";
}

const pages = {
  setup() {
    const form = document.getElementById("setup-form");
    onSubmit(form, async (data) => {
      if (data.password !== data.password_again) {
        showError(form, "The two passwords differ.", "password_again");
        return;
      }
      const result = await call("POST", "/api/auth/setup", {
        name: data.name,
        email: data.email,
        password: data.password,
      });
      if (result.ok) window.location.assign("/");
      else showFailure(form, result);
    });
  },

  login() {
    const login = document.getElementById("login-form");
    const twoFactor = document.getElementById("two-factor-form");
    const forgot = document.getElementById("forgot-form");
    let pendingCsrf = "";
    onSubmit(login, async (data) => {
      const result = await call("POST", "/api/auth/login", {
        email: data.email,
        password: data.password,
      });
      if (!result.ok) {
        showFailure(login, result);
      } else if (result.data.status === "two_factor_required") {
        pendingCsrf = result.data.csrf_token;
        login.hidden = true;
        twoFactor.hidden = false;
        twoFactor.elements.namedItem("code").focus();
      } else {
        window.location.assign(nextPage());
      }
    });
    onSubmit(twoFactor, async (data) => {
      const typed = data.code.trim();
      // App codes are digits; recovery codes have letters and dashes.
      const body = /^[0-9 ]+$/.test(typed) ? { code: typed } : { recovery_code: typed };
      const result = await call("POST", "/api/auth/login/two-factor", body, pendingCsrf);
      if (result.ok) window.location.assign(nextPage());
      else showFailure(twoFactor, result);
    });
    document.getElementById("forgot-link").addEventListener("click", (event) => {
      event.preventDefault();
      forgot.elements.namedItem("email").value = login.elements.namedItem("email").value;
      login.hidden = true;
      forgot.hidden = false;
    });
    onSubmit(forgot, async (data) => {
      const result = await call("POST", "/api/auth/password-reset", { email: data.email });
      if (!result.ok) {
        showFailure(forgot, result);
        return;
      }
      const notice = forgot.querySelector(".notice");
      notice.textContent = result.data.message;
      notice.hidden = false;
    });
  },

  reset() {
    const form = document.getElementById("reset-form");
    onSubmit(form, async (data) => {
      if (data.password !== data.password_again) {
        showError(form, "The two passwords differ.", "password_again");
        return;
      }
      const result = await call("POST", "/api/auth/password-reset/confirm", {
        token: tokenFromAddress(),
        password: data.password,
      });
      if (!result.ok) {
        showFailure(form, result);
        return;
      }
      form.hidden = true;
      document.querySelector("main > .notice").hidden = false;
    });
  },

  verify() {
    const form = document.getElementById("verify-form");
    onSubmit(form, async () => {
      const result = await call("POST", "/api/auth/verify-email", { token: tokenFromAddress() });
      if (!result.ok) {
        showFailure(form, result);
        return;
      }
      form.hidden = true;
      document.querySelector("main > .notice").hidden = false;
    });
  },
};

document.addEventListener("DOMContentLoaded", () => {
  const page = pages[document.body.dataset.page];
  if (page) page();
});
