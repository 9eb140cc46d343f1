// sleepcoach's charts: a few plain SVG drawings (time axis, curve, spans, marks, bars).
// Shipped with the package so the dashboard needs nothing from the internet; no dependencies.
"use strict";

window.SleepChart = (() => {
  const NS = "http://www.w3.org/2000/svg";

  /** An SVG element with attributes, appended to `parent` when given. */
  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) {
      node.setAttribute(key, String(value));
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  /** A text node in SVG (textContent: never markup). */
  function text(parent, x, y, content, cls, anchor) {
    const node = el("text", { x, y, class: cls || "label", "text-anchor": anchor || "middle" }, parent);
    node.textContent = content;
    return node;
  }

  /** A hover title for an SVG element. */
  function tip(node, content) {
    el("title", {}, node).textContent = content;
  }

  /** Empty an SVG and set up a plot area: x and y scales over the given domains. */
  function frame(svg, { x0, x1, y0, y1, left = 44, right = 12, top = 14, bottom = 26 }) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const box = svg.viewBox.baseVal;
    const width = box.width;
    const height = box.height;
    const spanX = x1 - x0 || 1;
    const spanY = y1 - y0 || 1;
    const x = (v) => left + ((v - x0) / spanX) * (width - left - right);
    const y = (v) => top + (1 - (v - y0) / spanY) * (height - top - bottom);
    return { svg, x, y, x0, x1, y0, y1, left, right, top, bottom, width, height };
  }

  /** Hour ticks along the bottom, in the person's time zone. */
  function timeAxis(f, format, stepHours) {
    const g = el("g", { class: "axis" }, f.svg);
    const step = stepHours * 3600 * 1000;
    const base = f.y(f.y0);
    el("line", { x1: f.left, x2: f.width - f.right, y1: base, y2: base }, g);
    // Ticks on local hours that are a multiple of the step (03:00, 06:00, ...), found by their
    // labels; in a zone off the whole hour, on every step from the first whole UTC hour.
    const first = Math.ceil(f.x0 / 3600000) * 3600000;
    let t = first;
    while (t <= f.x1) {
      const label = format(t);
      if (label.endsWith(":00") && Number(label.slice(0, 2)) % stepHours === 0) break;
      t += 3600000;
    }
    if (t > f.x1 || t - first >= step) t = first;
    for (; t <= f.x1; t += step) {
      const px = f.x(t);
      el("line", { x1: px, x2: px, y1: base, y2: base + 4 }, g);
      text(g, px, base + 16, format(t), "tick");
    }
  }

  /** Value ticks up the left side. */
  function valueAxis(f, ticks, unit) {
    const g = el("g", { class: "axis" }, f.svg);
    for (const v of ticks) {
      const py = f.y(v);
      el("line", { x1: f.left, x2: f.width - f.right, y1: py, y2: py, class: "grid" }, g);
      text(g, f.left - 6, py + 4, `${v}${unit}`, "tick", "end");
    }
  }

  /** Round ticks from 0 to at least `max`. */
  function niceTicks(max, count) {
    const raw = max / count;
    const mag = 10 ** Math.floor(Math.log10(raw || 1));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
    const ticks = [];
    for (let v = 0; v <= max + step / 2; v += step) ticks.push(Math.round(v * 100) / 100);
    return ticks;
  }

  /** A line (and the area under it) through [x, y] points. */
  function curve(f, points, cls) {
    if (!points.length) return null;
    const d = points.map(([px, py], i) => `${i ? "L" : "M"}${f.x(px).toFixed(1)},${f.y(py).toFixed(1)}`).join("");
    const base = f.y(f.y0).toFixed(1);
    const first = f.x(points[0][0]).toFixed(1);
    const last = f.x(points[points.length - 1][0]).toFixed(1);
    el("path", { d: `${d}L${last},${base}L${first},${base}Z`, class: `${cls} area` }, f.svg);
    return el("path", { d, class: `${cls} curve`, "data-points": points.length }, f.svg);
  }

  /** A vertical marker with a label at the top: centred, or beside the line ("end": to its
   * left, "start": to its right) where two markers stand close together. */
  function vmark(f, at, label, cls, anchor) {
    if (at < f.x0 || at > f.x1) return null;
    const g = el("g", { class: `mark ${cls}` }, f.svg);
    const px = f.x(at);
    el("line", { x1: px, x2: px, y1: f.top, y2: f.y(f.y0) }, g);
    const shift = anchor === "end" ? -3 : anchor === "start" ? 3 : 0;
    text(g, px + shift, f.top - 3, label, "mark-label", anchor || "middle");
    return g;
  }

  /** A horizontal line across the plot, labelled at its right end (or its left: "start"). */
  function hline(f, value, label, cls, side) {
    if (value > f.y1) return null;
    const g = el("g", { class: `mark ${cls}` }, f.svg);
    const py = f.y(value);
    el("line", { x1: f.left, x2: f.width - f.right, y1: py, y2: py }, g);
    if (side === "start") text(g, f.left + 4, py - 4, label, "mark-label", "start");
    else text(g, f.width - f.right - 2, py - 4, label, "mark-label", "end");
    return g;
  }

  /** A row of [start, end] spans at height band [yTop, yBottom] (pixels). */
  function spans(f, list, yTop, yBottom, cls, describe) {
    const g = el("g", { class: cls }, f.svg);
    for (const [a, b] of list) {
      const x0 = f.x(Math.max(a, f.x0));
      const x1 = f.x(Math.min(b, f.x1));
      const rect = el("rect", { x: x0, y: yTop, width: Math.max(1, x1 - x0), height: yBottom - yTop }, g);
      if (describe) tip(rect, describe(a, b));
    }
    return g;
  }

  /** Bars for a list of values (null: no data, drawn as a dash), with labels underneath. */
  function bars(svg, values, labels, { unit = "", limit = null, limitLabel = "", cls = "bar", digits = 0, predictedLast = false }) {
    const known = values.filter((v) => v !== null && v !== undefined);
    const top = Math.max(...known, limit !== null ? limit * 1.1 : 0, 1);
    const ticks = niceTicks(top, 3);
    const f = frame(svg, { x0: 0, x1: values.length, y0: 0, y1: ticks[ticks.length - 1], left: 40, bottom: 22, top: 10 });
    valueAxis(f, ticks, unit);
    const slot = f.x(1) - f.x(0);
    const g = el("g", { class: cls }, svg);
    values.forEach((v, i) => {
      const cx = f.x(i + 0.5);
      if (v === null || v === undefined) {
        const dash = el("line", { x1: cx - slot * 0.2, x2: cx + slot * 0.2, y1: f.y(0) - 3, y2: f.y(0) - 3, class: "nodata" }, g);
        tip(dash, `${labels[i].title}: no data`);
      } else {
        const rect = el("rect", { x: cx - slot * 0.35, width: slot * 0.7, y: f.y(v), height: Math.max(0, f.y(0) - f.y(v)), class: "value" }, g);
        if (limit !== null && v > limit) rect.classList.add("over");
        const predicted = predictedLast && i === values.length - 1;
        if (predicted) rect.classList.add("predicted");
        tip(rect, `${labels[i].title}: ${v.toFixed(digits)}${unit}${predicted ? " (predicted)" : ""}`);
      }
      if (labels[i].short) text(svg, cx, f.height - 6, labels[i].short, "tick");
    });
    if (limit !== null) hline(f, limit, limitLabel, "limit");
    return f;
  }

  return { el, text, tip, frame, timeAxis, valueAxis, niceTicks, curve, vmark, hline, spans, bars };
})();
