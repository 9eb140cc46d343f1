// sleepcoach's live dashboard: renders a person's view and follows its event stream.
// Every URL is relative to this page (./person/<id>), so it works under any sub-path.
"use strict";

(() => {
  const C = window.SleepChart;
  const person = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop());
  const streamUrl = `../events/person/${encodeURIComponent(person)}`;
  let formatters = null;

  function zoneFormatters(timeZone) {
    const make = (options) => new Intl.DateTimeFormat(undefined, { timeZone, ...options });
    const hm = make({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    const weekday = make({ weekday: "short" });
    const dayMonth = make({ day: "numeric", month: "short" });
    return {
      time: (ms) => hm.format(new Date(ms)),
      weekday: (ms) => weekday.format(new Date(ms)),
      day: (ms) => dayMonth.format(new Date(ms)),
    };
  }

  // -- small DOM helpers (textContent only: nothing from the data is parsed as markup) --------

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function fill(id, ...children) {
    const node = document.getElementById(id);
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  /** One figure of a `dl`: its label and value, kept together as the list wraps. */
  function figure(key, label, value, cls) {
    return [h("div", null, h("dt", null, label), h("dd", { "data-figure": key, class: cls || null }, value))];
  }

  const mg = (v) => (v === null || v === undefined ? "no data" : `${Math.round(v)} mg`);
  const localMs = (iso) => Date.parse(iso);
  const minutes = (m) => (m === null || m === undefined ? "no data" : `${Math.floor(m / 60)} h ${String(Math.round(m % 60)).padStart(2, "0")} min`);
  const orNoData = (v, suffix) => (v === null || v === undefined ? "no data" : `${v}${suffix || ""}`);

  // -- the parts of the page --------------------------------------------------------------------

  function renderHeader(view) {
    document.title = `${view.person.name} · sleepcoach`;
    fill("name", view.person.name);
    const links = view.people.length > 1
      ? view.people.map((p) => h("a", { href: encodeURIComponent(p.id), "aria-current": p.id === view.person.id ? "page" : null }, p.name))
      : [];
    fill("people", ...links);
  }

  function renderCaffeine(view) {
    const c = view.caffeine;
    const f = formatters;
    const over = c.bedtime_mg > c.limit_mg;
    fill(
      "caffeine-figures",
      ...figure("now", "In your body now", mg(c.now_mg)),
      ...figure("bedtime", `At bedtime (${f.time(c.bedtime_ms)})`, mg(c.bedtime_mg), over ? "over" : null),
      ...figure("limit", "Bedtime limit", mg(c.limit_mg)),
      ...figure("today", "Drunk today", mg(c.today_mg)),
    );
    const svg = document.getElementById("caffeine-chart");
    const peak = Math.max(c.limit_mg * 1.4, ...c.points.map((p) => p[1]), 10);
    const ticks = C.niceTicks(peak, 4);
    const fr = C.frame(svg, { x0: c.start_ms, x1: c.end_ms, y0: 0, y1: ticks[ticks.length - 1], top: 18 });
    C.valueAxis(fr, ticks, "");
    C.timeAxis(fr, f.time, 3);
    C.curve(fr, c.points, "caffeine");
    C.hline(fr, c.limit_mg, `limit ${Math.round(c.limit_mg)} mg`, "limit", "start");
    C.vmark(fr, c.last_call_ms, "last call", "last-call", "end");
    C.vmark(fr, c.cutoff_ms, "cutoff", "cutoff", "start");
    C.vmark(fr, c.bedtime_ms, "bedtime", "bedtime");
    C.vmark(fr, view.now_ms, "now", "now");
    for (const dose of c.doses) {
      const after = c.points.filter((p) => p[0] <= dose.at_ms).pop();
      const y = after ? after[1] : dose.mg;
      const dot = C.el("circle", { cx: fr.x(dose.at_ms), cy: fr.y(y), r: 4, class: "dose" }, svg);
      C.tip(dot, `${f.time(dose.at_ms)}: ${Math.round(dose.mg)} mg`);
    }
    const atBed = C.el("circle", { cx: fr.x(c.bedtime_ms), cy: fr.y(Math.min(c.bedtime_mg, fr.y1)), r: 5, class: `load${over ? " over" : ""}` }, svg);
    C.tip(atBed, `predicted at bedtime: ${Math.round(c.bedtime_mg)} mg`);
    fill("caffeine-source", `Model: ${c.source}. Half-life ${c.half_life_h} h.`);
  }

  function renderPlanned(view) {
    const next = view.planned.find((item) => !item.passed);
    fill(
      "planned-list",
      ...view.planned.map((item) =>
        h(
          "li",
          { class: item.passed ? "passed" : item === next ? "next" : null, "data-id": item.id },
          h("time", { datetime: item.at }, formatters.time(item.at_ms)),
          h("span", { class: "what" }, item.title),
          item.note ? h("span", { class: "note" }, item.note) : null,
        ),
      ),
    );
  }

  function evidenceTable(evidence) {
    const rows = Object.entries(evidence).map(([key, value]) =>
      h("tr", null, h("th", { scope: "row" }, key.replaceAll("_", " ")), h("td", null, typeof value === "object" ? JSON.stringify(value) : value)),
    );
    return h("table", { class: "evidence" }, h("tbody", null, ...rows));
  }

  function renderNudges(view) {
    if (!view.nudges.length) {
      fill("nudge-list", h("li", { class: "empty" }, "No nudges in the last two days."));
      return;
    }
    fill(
      "nudge-list",
      ...view.nudges.map((n) =>
        h(
          "li",
          { class: `nudge ${n.severity}`, "data-rule": n.rule },
          h("div", { class: "head" },
            h("span", { class: "severity" }, n.severity),
            h("strong", null, n.title),
            h("time", { datetime: n.ts }, `${formatters.weekday(localMs(n.ts))} ${formatters.time(localMs(n.ts))}`),
          ),
          h("p", null, n.message),
          h("details", null, h("summary", null, "Evidence"), evidenceTable(n.evidence)),
        ),
      ),
    );
  }

  function renderNight(view) {
    const n = view.last_night;
    const svg = document.getElementById("night-chart");
    if (!n) {
      fill("night-date", "");
      fill("night-status", "No night scored yet: the bed sensor's first night shows here the morning after.");
      fill("night-figures");
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      svg.classList.add("hidden");
      return;
    }
    fill("night-date", n.night ? `(night of ${formatters.day(Date.parse(`${n.night}T12:00:00Z`))})` : "");
    const statusText = {
      ok: "",
      "no data": "The bed sensor reported nothing this night: no data, not a quiet night.",
      "no movement data": "The bed reported only occupancy this night, no movements: twitches are unknown.",
    }[n.status] ?? n.status;
    fill("night-status", statusText);
    const high = n.plm_index !== null && n.plm_index > n.plm_index_limit;
    fill(
      "night-figures",
      ...figure("time_in_bed", "Time in bed", minutes(n.time_in_bed_min)),
      ...figure("sleep_onset", "Fell asleep", n.sleep_onset_ms ? formatters.time(n.sleep_onset_ms) : "no data"),
      ...figure("settle", "Time to settle", n.time_to_settle_min === null ? "no data" : `${n.time_to_settle_min} min`),
      ...figure("movements", "Movements", orNoData(n.movements)),
      ...figure("series", "PLM series", orNoData(n.series)),
      ...figure("plm_index", "PLM index", orNoData(n.plm_index, " /h"), high ? "over" : null),
      ...figure("hypnic_jerks", "Hypnic jerks", orNoData(n.hypnic_jerks)),
    );
    svg.classList.toggle("hidden", n.start_ms === null || n.end_ms === null);
    if (n.start_ms === null || n.end_ms === null) return;
    drawNight(svg, n);
  }

  function drawNight(svg, n) {
    const f = formatters;
    const fr = C.frame(svg, { x0: n.start_ms, x1: n.end_ms, y0: 0, y1: 4, left: 96, top: 10 });
    C.timeAxis(fr, f.time, 2);
    const rows = [["in bed", 3.5], ["movements", 2.5], ["PLM series", 1.5], ["hypnic jerks", 0.5]];
    for (const [label, y] of rows) C.text(svg, fr.left - 8, fr.y(y) + 4, label, "row-label", "end");
    const band = (y) => [fr.y(y + 0.35), fr.y(y - 0.35)];
    const span = (a, b) => `${f.time(a)}–${f.time(b)}`;
    const line = n.timeline;
    if (line) {
      C.spans(fr, line.in_bed, ...band(3.5), "in-bed", span);
      C.spans(fr, line.series, ...band(1.5), "series", (a, b) => span(a, b));
    }
    const moves = C.el("g", { class: "movements" }, svg);
    const [top, bottom] = band(2.5);
    const reach = { posture: top, series: (top + bottom) / 2, limb: (top + bottom) / 2, brief: bottom - 4 };
    for (const [t, duration, kind] of line ? line.movements : []) {
      if (kind === "jerk") continue; // drawn on its own row
      const px = fr.x(t);
      const tick = C.el("line", { x1: px, x2: px, y1: reach[kind] ?? bottom - 4, y2: bottom, class: kind }, moves);
      C.tip(tick, `${f.time(t)} ${kind === "series" ? "limb movement in a PLM series" : kind} (${duration} s)`);
    }
    if (!line) C.text(svg, (fr.left + fr.width) / 2, fr.y(2.5) + 4, "no movement timeline for this night", "row-note");
    else if (line.omitted) C.text(svg, fr.width - fr.right, fr.y(2.5) - 12, `${line.omitted} weaker movements not drawn`, "row-note", "end");
    const jerks = C.el("g", { class: "jerks" }, svg);
    for (const t of n.hypnic_jerks_ms) {
      const px = fr.x(t);
      const py = fr.y(0.5);
      const mark = C.el("path", { d: `M${px},${py - 6}L${px + 5},${py + 5}L${px - 5},${py + 5}Z`, class: "jerk" }, jerks);
      C.tip(mark, `${f.time(t)} hypnic jerk`);
    }
    if (n.sleep_onset_ms) C.vmark(fr, n.sleep_onset_ms, "asleep", "onset");
  }

  function renderTrends(view) {
    const t = view.trends;
    const f = formatters;
    const labels = t.days.map((d) => {
      const ms = Date.parse(`${d.night}T12:00:00Z`);
      return { short: f.weekday(ms).slice(0, 2), title: `${f.weekday(ms)} ${f.day(ms)}` };
    });
    const charts = [
      ["PLM index per hour", "plm_index", { unit: "", limit: t.plm_index_limit, limitLabel: `${t.plm_index_limit}/h`, digits: 1, cls: "bar plm" }],
      ["Hypnic jerks", "hypnic_jerks", { cls: "bar jerks" }],
      ["Time in bed (h)", "time_in_bed_h", { digits: 1, cls: "bar in-bed" }],
      ["Caffeine at bedtime (mg; tonight: predicted)", "caffeine_at_bedtime_mg", { limit: t.caffeine_limit_mg, limitLabel: `${t.caffeine_limit_mg} mg`, cls: "bar caffeine", predictedLast: true }],
    ];
    fill(
      "trend-charts",
      ...charts.map(([title, key, options]) => {
        const svg = C.el("svg", { viewBox: "0 0 520 150", class: "chart small", role: "img", "aria-label": title, "data-trend": key });
        C.bars(svg, t.days.map((d) => d[key]), labels, options);
        return h("figure", null, h("figcaption", null, title), svg);
      }),
    );
  }

  function render(view) {
    formatters = zoneFormatters(view.timezone);
    renderHeader(view);
    renderCaffeine(view);
    renderPlanned(view);
    renderNudges(view);
    renderNight(view);
    renderTrends(view);
    document.body.dataset.updated = view.now;
  }

  function setLive(on) {
    const node = document.getElementById("live");
    node.classList.toggle("on", on);
    node.textContent = on ? "live" : "reconnecting…";
  }

  const source = new EventSource(streamUrl);
  source.addEventListener("view", (event) => {
    render(JSON.parse(event.data));
    setLive(true);
  });
  source.addEventListener("open", () => setLive(true));
  source.addEventListener("error", () => setLive(false));
})();
