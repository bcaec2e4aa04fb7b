// The detect page: per-face fake probabilities drawn over the photo, or per-frame scores of a video.
"use strict";

(() => {
  const form = document.getElementById("detect-form");
  const fileInput = document.getElementById("file");
  const select = document.getElementById("method");
  const info = document.getElementById("method-info");
  const whole = document.getElementById("whole");
  const button = document.getElementById("detect");
  const status = document.getElementById("status");
  const stage = document.getElementById("stage");
  const frames = document.getElementById("frames");
  const chart = document.getElementById("chart");
  const videoScore = document.getElementById("video-score");
  const recordBox = document.getElementById("record-box");
  const record = document.getElementById("record");

  const state = { file: null, busy: false, entries: [] };

  function updateButton() {
    button.disabled = state.busy || !state.file || !select.value;
  }

  function color(p) {
    // green (real) to red (fake)
    const hue = Math.round(120 * (1 - Math.min(1, Math.max(0, p))));
    return `hsl(${hue}, 85%, 45%)`;
  }

  async function drawImage(file, answer) {
    const bitmap = await createImageBitmap(file);
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    const sx = bitmap.width / answer.width;
    const sy = bitmap.height / answer.height;
    const line = Math.max(2, Math.round(bitmap.width / 200));
    ctx.font = `bold ${Math.max(12, Math.round(bitmap.width / 32))}px system-ui, sans-serif`;
    for (const face of answer.faces) {
      const [x0, y0, x1, y1] = face.box;
      const p = face.fake_probability;
      ctx.strokeStyle = color(p);
      ctx.lineWidth = line;
      ctx.strokeRect(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
      const label = `fake ${(100 * p).toFixed(1)}%`;
      const height = parseInt(ctx.font.match(/(\d+)px/)[1], 10) + 6;
      const width = ctx.measureText(label).width + 10;
      const top = Math.max(0, y0 * sy - height);
      ctx.fillStyle = color(p);
      ctx.fillRect(x0 * sx, top, width, height);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, x0 * sx + 5, top + height - 6);
    }
    stage.replaceChildren(canvas);
    stage.classList.remove("empty");
  }

  function drawChart(answer) {
    const ctx = chart.getContext("2d");
    const width = chart.width;
    const height = chart.height;
    ctx.clearRect(0, 0, width, height);
    ctx.strokeStyle = "#d7dde3";
    ctx.beginPath();
    ctx.moveTo(0, height / 2);
    ctx.lineTo(width, height / 2);
    ctx.stroke();
    const perFrame = answer.per_frame || [];
    const bar = width / Math.max(1, answer.frames);
    for (const frame of perFrame) {
      const x = frame.frame * bar;
      if (frame.score === null) {
        ctx.fillStyle = "#c3c9cf";
        ctx.fillRect(x, height - 4, Math.max(1, bar - 1), 4);
      } else {
        ctx.fillStyle = color(frame.score);
        ctx.fillRect(x, height * (1 - frame.score), Math.max(1, bar - 1), height * frame.score);
      }
    }
    frames.hidden = false;
    const score = answer.score === null ? "no face found in any frame" : `video score ${(100 * answer.score).toFixed(1)}% fake`;
    videoScore.textContent = `${score} · ${answer.frames} frames, ${answer.frames_without_face.length} without a face`;
  }

  async function detect() {
    const body = new FormData();
    body.append("file", state.file, state.file.name);
    body.append("method", select.value);
    body.append("faces", whole.checked ? "whole" : "detect");
    state.busy = true;
    updateButton();
    Portal.setStatus(status, "detecting…", "busy");
    try {
      const answer = await Portal.api("/api/detect", { method: "POST", body });
      if (answer.kind === "video") {
        drawChart(answer);
      } else {
        frames.hidden = true;
        await drawImage(state.file, answer);
      }
      record.textContent = JSON.stringify(answer, null, 2);
      recordBox.hidden = false;
      const found = answer.kind === "video" ? `${answer.frames} frames` : `${answer.faces.length} face(s)`;
      const score = answer.score === null ? "no face found" : `score ${(100 * answer.score).toFixed(1)}% fake`;
      Portal.setStatus(status, `${found}: ${score}`, "ok");
    } catch (error) {
      Portal.setStatus(status, Portal.describeError(error), "error");
    } finally {
      state.busy = false;
      updateButton();
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
    state.file = file;
    frames.hidden = true;
    Portal.showMedia(stage, file);
    if (state.entries.length) Portal.setStatus(status, "");
    updateButton();
  });
  select.addEventListener("change", () => {
    const entry = state.entries.find((m) => m.id === select.value);
    info.textContent = entry ? entry.summary : "";
    updateButton();
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); detect(); });

  function load() {
    Portal.fillMethods(select, "detect")
      .then(({ entries }) => {
        state.entries = entries;
        if (!entries.length) {
          Portal.setStatus(status, "this server offers no detector: start it with --runs on detection runs or --method name=checkpoint", "error");
        } else {
          info.textContent = entries[0].summary;
        }
        updateButton();
      })
      .catch((error) => Portal.setStatus(status, Portal.describeError(error), "error"));
  }
  document.getElementById("token")?.addEventListener("change", load);
  updateButton();
  load();
})();
