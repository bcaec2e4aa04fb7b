// The protect page: choose a file and a method, protect or recover, compare, download.
"use strict";

(() => {
  const form = document.getElementById("protect-form");
  const fileInput = document.getElementById("file");
  const select = document.getElementById("method");
  const info = document.getElementById("method-info");
  const passwordField = document.getElementById("password-field");
  const password = document.getElementById("password");
  const whole = document.getElementById("whole");
  const protectButton = document.getElementById("protect");
  const recoverButton = document.getElementById("recover");
  const useResult = document.getElementById("use-result");
  const status = document.getElementById("status");
  const original = document.getElementById("original");
  const result = document.getElementById("result");
  const download = document.getElementById("download");
  const recordBox = document.getElementById("record-box");
  const record = document.getElementById("record");

  const state = { input: null, result: null, method: null, busy: false };

  function updateButtons() {
    const ready = Boolean(state.input && select.value) && !state.busy;
    protectButton.disabled = !ready;
    recoverButton.disabled = !ready || !(state.method && state.method.reversible);
    useResult.disabled = state.busy || !state.result;
  }

  async function chooseMethod() {
    state.method = null;
    passwordField.hidden = true;
    info.textContent = "";
    updateButtons();
    if (!select.value) return;
    try {
      Portal.setStatus(status, "loading the method…", "busy");
      state.method = await Portal.api(`/api/methods/${encodeURIComponent(select.value)}`);
      passwordField.hidden = !state.method.needs_password;
      info.textContent = `${state.method.summary}${state.method.reversible ? " · reversible" : ""}`;
      Portal.setStatus(status, "");
    } catch (error) {
      Portal.setStatus(status, Portal.describeError(error), "error");
    }
    updateButtons();
  }

  function setInput(blob, name, regions) {
    state.input = { blob, name, regions };
    Portal.showMedia(original, blob);
    updateButtons();
  }

  async function run(action) {
    if (!state.input) return;
    const form = new FormData();
    form.append("file", state.input.blob, state.input.name);
    form.append("method", select.value);
    form.append("faces", whole.checked ? "whole" : "detect");
    if (!passwordField.hidden && password.value) form.append("password", password.value);
    if (action === "recover" && state.input.regions) form.append("regions", JSON.stringify(state.input.regions));
    state.busy = true;
    updateButtons();
    Portal.setStatus(status, action === "protect" ? "protecting…" : "recovering…", "busy");
    const started = performance.now();
    try {
      const answer = await Portal.api(`/api/${action}`, { method: "POST", body: form });
      const blob = Portal.dataUrlToBlob(answer.data_url);
      state.result = { blob, name: answer.filename, faces: answer.faces || null };
      Portal.showMedia(result, blob);
      download.href = answer.data_url;
      download.download = answer.filename;
      download.textContent = `Download ${answer.filename}`;
      download.hidden = false;
      const { data_url: _, ...shown } = answer;
      record.textContent = JSON.stringify(shown, null, 2);
      recordBox.hidden = false;
      const faces = answer.kind === "video"
        ? `${answer.frames} frames, ${answer.frames_without_face.length} without a face`
        : `${answer.faces.length} face${answer.faces.length === 1 ? "" : "s"}`;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      Portal.setStatus(status, `${action === "protect" ? "protected" : "recovered"}: ${faces} (${seconds} s)`, "ok");
    } catch (error) {
      Portal.setStatus(status, Portal.describeError(error), "error");
    } finally {
      state.busy = false;
      updateButtons();
    }
  }

  fileInput.addEventListener("change", () => {
    const file = fileInput.files[0];
    if (!file) return;
    const problem = Portal.tooLarge(file);
    if (problem) {
      Portal.setStatus(status, problem, "error");
      return;
    }
    Portal.setStatus(status, "");
    setInput(file, file.name, null);
  });
  select.addEventListener("change", chooseMethod);
  form.addEventListener("submit", (event) => { event.preventDefault(); run("protect"); });
  recoverButton.addEventListener("click", () => run("recover"));
  useResult.addEventListener("click", () => {
    if (!state.result) return;
    setInput(state.result.blob, state.result.name, state.result.faces);
    Portal.setStatus(status, "the result is now the input: recover it with the same method and password", "ok");
  });

  Portal.fillMethods(select, "protect")
    .then(({ entries }) => {
      if (!entries.length) Portal.setStatus(status, "this server offers no protection method", "error");
      return chooseMethod();
    })
    .catch((error) => Portal.setStatus(status, Portal.describeError(error), "error"));
  document.getElementById("token")?.addEventListener("change", () => {
    Portal.fillMethods(select, "protect").then(chooseMethod).catch((e) => Portal.setStatus(status, Portal.describeError(e), "error"));
  });
})();
