// ProFace Lab portal: what both pages share (API calls with the optional token, status line, helpers).
"use strict";

const Portal = (() => {
  const TOKEN_KEY = "lab-portal-token";
  const tokenInput = document.getElementById("token");
  if (tokenInput) {
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
    tokenInput.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim()));
  }

  class ApiError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    const token = (sessionStorage.getItem(TOKEN_KEY) || "").trim();
    if (token) headers.set("Authorization", `Bearer ${token}`);
    headers.set("Accept", "application/json");
    const response = await fetch(path, { ...options, headers });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      let message = (body && body.error) || `${response.status} ${response.statusText}`;
      if (response.status === 401) message += " (enter the API token at the top right)";
      throw new ApiError(response.status, message, response.headers.get("Retry-After"));
    }
    return body;
  }

  function setStatus(element, text, kind = "") {
    element.textContent = text;
    element.className = `status ${kind}`;
  }

  function describeError(error) {
    if (error instanceof ApiError && error.status === 503) {
      return `${error.message}`;
    }
    return error.message || String(error);
  }

  function dataUrlToBlob(url) {
    const [head, data] = url.split(",", 2);
    const type = head.slice(5, head.indexOf(";"));
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    return new Blob([bytes], { type });
  }

  function isVideo(blob) {
    return (blob.type || "").startsWith("video/");
  }

  function showMedia(container, blob) {
    container.replaceChildren();
    container.classList.remove("empty");
    const url = URL.createObjectURL(blob);
    const element = document.createElement(isVideo(blob) ? "video" : "img");
    if (element.tagName === "VIDEO") element.controls = true; else element.alt = "";
    element.src = url;
    container.appendChild(element);
    return element;
  }

  async function fillMethods(select, kind, info) {
    const listing = await api("/api/methods");
    const entries = listing.methods.filter((m) => m.kind === kind);
    select.replaceChildren(...entries.map((m) => new Option(m.label, m.id)));
    return { entries, limits: listing.limits };
  }

  function tooLarge(file) {
    const limit = Number(document.body.dataset.maxBytes || 0);
    return limit && file.size > limit ? `the file is ${file.size.toLocaleString()} bytes; the limit is ${limit.toLocaleString()}` : "";
  }

  return { api, ApiError, setStatus, describeError, dataUrlToBlob, showMedia, isVideo, fillMethods, tooLarge };
})();
