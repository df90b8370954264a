/* The dashboard pages: every figure is fetched from the JSON API with the staff session (GET
 * only), drawn, and fetched again every `refresh_seconds` (30; `?refresh=<s>` overrides it)
 * without a reload.
 *
 * The page declares what it shows; this file fills it in:
 *  - a figure: <x data-source="summary" data-field="net_pnl_usd" data-kind="usd">
 *  - a table: <table data-source="bots"> whose <th data-field data-kind> name the columns
 *  - a chart: <div class="chart" data-chart="equity">
 * Every filled element carries data-value, the API's raw value (strings as given, numbers in
 * JSON spelling, "" for null), so a test can compare the page with the API. A price column
 * (data-kind="price") is written at the places of its row's symbol (config.price_places), a
 * risk value (data-kind="limit") in the unit of its row's event type (config.risk_units); the
 * text of every kind is window.atbFormat's (format.js, the twin of trading/display.py).
 *
 * Ready signal (shared with the benchmark): after every chart has drawn and every figure is
 * filled, document.documentElement.dataset.ready = "1"; data-loads counts full draws, and
 * data-ready-ms holds the time from navigation to the first one.
 */
(function () {
  "use strict";

  const { format, rawText, sign, time, UNKNOWN } = window.atbFormat;
  const root = document.documentElement;
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const charts = {};
  const CHART_HEIGHT = 240;
  const COLORS = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d"];
  const GAIN = "#059669";
  const LOSS = "#dc2626";

  /* --- Fetching ---------------------------------------------------------------------------- */

  class ApiError extends Error {
    constructor(url, status) {
      super(`${url} answered ${status}`);
      this.status = status;
    }
  }

  async function getJSON(url) {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    if (!response.ok) throw new ApiError(url, response.status);
    return response.json();
  }

  function withQuery(url, params) {
    const query = new URLSearchParams(params).toString();
    return query ? `${url}${url.includes("?") ? "&" : "?"}${query}` : url;
  }

  function forBot(template, botId) {
    return template.replace(config.bot_placeholder, encodeURIComponent(botId));
  }

  function botPage(botId) {
    return forBot(config.bot_page, botId);
  }

  /* --- Figures and tables ------------------------------------------------------------------ */

  /* What a kind needs to know of its row: a price's places, a risk value's unit. */
  function context(kind, row) {
    if (!row) return null;
    if (kind === "price") return { places: config.price_places[row.symbol] ?? null };
    if (kind === "limit") return { unit: config.risk_units[row.event_type] ?? null };
    return null;
  }

  function fill(el, raw, row) {
    const kind = el.dataset.kind || "text";
    el.dataset.value = rawText(raw);
    if (raw === null || raw === undefined) el.dataset.null = "1";
    else delete el.dataset.null;
    el.classList.remove("gain", "loss", "stale");
    if (el.hasAttribute("data-stale") && raw !== null && Number(raw) > config.stale_seconds) {
      el.classList.add("stale");
    }
    if (el.hasAttribute("data-signed")) {
      const s = sign(raw);
      if (s > 0) el.classList.add("gain");
      if (s < 0) el.classList.add("loss");
    }
    const absent = raw === null || raw === undefined || raw === "";
    const text = absent && el.dataset.nullText ? el.dataset.nullText : format(kind, raw, context(kind, row));
    if (kind === "price" && text === UNKNOWN) el.title = "No price known for this market yet";
    if (kind === "bot" && raw) {
      const link = document.createElement("a");
      link.href = botPage(raw);
      link.textContent = text;
      el.replaceChildren(link);
    } else if (kind === "badge" && raw) {
      const badge = document.createElement("span");
      badge.className = `badge badge-${String(raw).replace(/[^a-z0-9_-]/gi, "")}`;
      badge.textContent = text;
      el.replaceChildren(badge);
    } else {
      el.textContent = text;
    }
    if (kind === "time" && raw) el.title = `${raw} (as the API sent it)`;
  }

  function fillFigures(source, data) {
    for (const el of document.querySelectorAll(`[data-source="${source}"][data-field]`)) {
      fill(el, data[el.dataset.field]);
    }
  }

  function fillTable(source, rows) {
    const table = document.querySelector(`table[data-source="${source}"]`);
    if (!table) return;
    const columns = [...table.querySelectorAll("thead th[data-field]")];
    const body = table.tBodies[0];
    const fresh = rows.map((row, index) => {
      const tr = document.createElement("tr");
      tr.dataset.row = String(index);
      for (const th of columns) {
        const td = document.createElement("td");
        td.dataset.field = th.dataset.field;
        td.dataset.kind = th.dataset.kind || "text";
        for (const flag of ["data-signed", "data-stale", "data-null-text"]) {
          if (th.hasAttribute(flag)) td.setAttribute(flag, th.getAttribute(flag));
        }
        if (th.classList.contains("num")) td.className = "num";
        fill(td, row[th.dataset.field], row);
        tr.append(td);
      }
      return tr;
    });
    if (!fresh.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = columns.length;
      td.className = "empty";
      td.textContent = table.dataset.empty || "Nothing yet.";
      tr.append(td);
      fresh.push(tr);
    }
    body.replaceChildren(...fresh);
    table.dataset.rows = String(rows.length);
  }

  /* --- Charts (uPlot) ---------------------------------------------------------------------- */

  function utc(ts) {
    return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
  }

  function seconds(iso) {
    return Date.parse(iso.length === 10 ? `${iso}T00:00:00Z` : iso) / 1e3;
  }

  /* A chart's legend value: money as every figure is written (format.js). */
  function money(value) {
    return value == null ? "" : format("usd", value);
  }

  /* A chart's y-axis label: the amount only (the caption names the currency). */
  function axisAmount(value) {
    return value.toLocaleString("en-US", { maximumFractionDigits: 2 });
  }

  function axisMoney(u, values) {
    const big = values.some((v) => Math.abs(v) >= 1e6);
    return values.map((v) =>
      big ? `${(v / 1e6).toLocaleString("en-US", { maximumFractionDigits: 3 })}M` : axisAmount(v),
    );
  }

  /* Draw `data` ([xs, ...ys]) in the chart element; resolves once it has drawn. */
  function drawChart(name, build, data) {
    const el = document.querySelector(`[data-chart="${name}"]`);
    if (!el) return Promise.resolve();
    if (charts[name]) {
      charts[name].destroy();
      delete charts[name];
    }
    const empty = !data || !data[0] || data[0].length === 0;
    el.dataset.empty = empty ? "1" : "0";
    if (empty) {
      const note = document.createElement("p");
      note.className = "empty";
      note.textContent = el.dataset.emptyText || "No data yet.";
      el.replaceChildren(note);
      el.dataset.drawn = "1";
      return Promise.resolve();
    }
    el.replaceChildren();
    el.dataset.drawn = "0";
    return new Promise((resolve) => {
      const opts = build();
      opts.width = Math.max(el.clientWidth, 200);
      opts.height = CHART_HEIGHT;
      opts.tzDate = utc;
      opts.hooks = {
        draw: [
          () => {
            el.dataset.drawn = "1";
            resolve();
          },
        ],
      };
      charts[name] = new uPlot(opts, data, el);
    });
  }

  function lineSeries(label, color, extra) {
    return {
      label,
      stroke: color,
      width: 2,
      value: (u, v) => money(v),
      spanGaps: true,
      points: { show: false },
      ...extra,
    };
  }

  function barSeries(label, color) {
    return {
      label,
      fill: color,
      stroke: color,
      paths: uPlot.paths.bars({ size: [0.7, 40] }),
      points: { show: false },
      value: (u, v) => money(v),
    };
  }

  function timeChart(series, axes) {
    return () => ({
      scales: { x: { time: true } },
      axes: [{}, { size: 64, values: axisMoney, ...axes }],
      series: [{ value: (u, v) => (v == null ? "" : time(v * 1e3)) }, ...series],
    });
  }

  /* Split one series into gains and losses, so each bar gets its colour. */
  function gainLossBars(xs, ys) {
    return [xs, ys.map((v) => (v >= 0 ? v : null)), ys.map((v) => (v < 0 ? v : null))];
  }

  window.addEventListener("resize", () => {
    for (const [name, chart] of Object.entries(charts)) {
      const el = document.querySelector(`[data-chart="${name}"]`);
      chart.setSize({ width: Math.max(el.clientWidth, 200), height: CHART_HEIGHT });
    }
  });

  /* --- The portfolio page ------------------------------------------------------------------ */

  /* Days of every bot together (portfolio/performance/): net pnl, and the realized equity at
   * each day's close. */
  function dailyTotals(rows) {
    return {
      xs: rows.map((r) => seconds(r.period_start)),
      pnl: rows.map((r) => Number(r.net_pnl_usd)),
      equity: rows.map((r) => Number(r.equity_close_usd)),
    };
  }

  function hoursAgo(hours) {
    return new Date(Date.now() - hours * 3600e3).toISOString();
  }

  async function loadPortfolio() {
    const api = config.api;
    const [summary, snapshots, positions, risks, performance] = await Promise.all([
      getJSON(api.summary),
      getJSON(withQuery(api.snapshots, { since: hoursAgo(config.snapshot_hours), page_size: 1000 })),
      getJSON(withQuery(api.positions, { status: "open", page_size: 50 })),
      getJSON(withQuery(api.risk_events, { page_size: 10 })),
      getJSON(withQuery(api.performance, { period: "day" })),
    ]);
    fillFigures("summary", summary);
    fillTable("bots", summary.bots);
    fillTable("positions", positions.results);
    fillTable("risk_events", risks.results);

    const daily = dailyTotals(performance.rows);
    const snaps = snapshots.results.slice().reverse();
    const snapXs = snaps.map((s) => seconds(s.ts));
    const equityData =
      daily.xs.length || snapXs.length
        ? uPlot.join([
            [daily.xs, daily.equity],
            [snapXs, snaps.map((s) => Number(s.total_equity_usd))],
          ])
        : [[]];
    const bots = summary.bots;
    return Promise.all([
      drawChart(
        "equity",
        timeChart([
          lineSeries("Realized equity, daily close", COLORS[0], { paths: uPlot.paths.stepped({ align: 1 }) }),
          lineSeries("Total equity (snapshots)", COLORS[1]),
        ]),
        equityData,
      ),
      drawChart(
        "daily-pnl",
        timeChart([barSeries("Gain", GAIN), barSeries("Loss", LOSS)]),
        gainLossBars(daily.xs, daily.pnl),
      ),
      drawChart(
        "exposure",
        () => ({
          scales: { x: { time: false, range: [-0.5, Math.max(bots.length - 0.5, 0.5)] } },
          axes: [
            { splits: () => bots.map((_, i) => i), values: (u, splits) => splits.map((i) => bots[i]?.bot_id ?? "") },
            { size: 64, values: axisMoney },
          ],
          series: [{ value: (u, i) => bots[i]?.bot_id ?? "" }, barSeries("Exposure (USD)", COLORS[0])],
        }),
        bots.length ? [bots.map((_, i) => i), bots.map((b) => Number(b.exposure_usd))] : [[]],
      ),
    ]);
  }

  /* --- The bot page ------------------------------------------------------------------------ */

  async function loadBot() {
    const api = config.api;
    const [summary, equity, months, exits, trades] = await Promise.all([
      getJSON(api.summary),
      getJSON(withQuery(api.equity, { max_points: config.equity_max_points })),
      getJSON(withQuery(api.performance, { period: "month" })),
      getJSON(withQuery(api.breakdown, { by: "exit_reason" })),
      getJSON(withQuery(api.trades, { bot_id: config.bot_id, page_size: 20 })),
    ]);
    fillFigures("summary", summary);
    fillFigures("equity", { points_drawn: equity.points.length, points_total: equity.points_total });
    fillTable("monthly", months.rows);
    fillTable("exit_reasons", exits.rows);
    fillTable("trades", trades.results);

    const points = equity.points;
    const xs = points.map((p) => seconds(p.ts));
    const reported = equity.reported || [];
    const equityData =
      xs.length || reported.length
        ? uPlot.join([
            [xs, points.map((p) => Number(p.equity_usd)), points.map((p) => Number(p.peak_usd))],
            [reported.map((r) => seconds(r.ts)), reported.map((r) => Number(r.equity_usd))],
          ])
        : [[]];
    return Promise.all([
      drawChart(
        "equity",
        timeChart([
          lineSeries("Realized equity", COLORS[0], { paths: uPlot.paths.stepped({ align: 1 }) }),
          lineSeries("Peak", "#94a3b8", { dash: [4, 4], width: 1, paths: uPlot.paths.stepped({ align: 1 }) }),
          lineSeries("Reported equity", COLORS[1]),
        ]),
        equityData,
      ),
      drawChart(
        "drawdown",
        timeChart(
          [
            {
              label: "Drawdown %",
              stroke: LOSS,
              fill: "rgba(220, 38, 38, 0.15)",
              paths: uPlot.paths.stepped({ align: 1 }),
              points: { show: false },
              value: (u, v) => (v == null ? "" : format("pct", v)),
            },
          ],
          { values: (u, values) => values.map((v) => `${v}%`) },
        ),
        [xs, points.map((p) => -Number(p.drawdown_pct))],
      ),
    ]);
  }

  /* --- The refresh loop -------------------------------------------------------------------- */

  function refreshSeconds() {
    const asked = Number(new URLSearchParams(window.location.search).get("refresh"));
    return Number.isFinite(asked) && asked >= 1 ? asked : config.refresh_seconds;
  }

  function showError(error) {
    const banner = document.getElementById("dashboard-error");
    if (!error) {
      banner.hidden = true;
      delete root.dataset.error;
      return;
    }
    const ended = error.status === 401 || error.status === 403;
    banner.textContent = ended
      ? "Your session has ended: reload the page to log in again."
      : `Could not refresh the figures (${error.message}); retrying.`;
    banner.hidden = false;
    root.dataset.error = error.message;
  }

  const load = config.page === "bot" ? loadBot : loadPortfolio;
  let loads = 0;

  async function cycle() {
    try {
      await load();
      loads += 1;
      root.dataset.loads = String(loads);
      const stamp = document.getElementById("dashboard-updated");
      if (stamp) stamp.textContent = time(Date.now());
      showError(null);
      // Milliseconds from the start of navigation to the first full draw (for the benchmark).
      if (!root.dataset.readyMs) root.dataset.readyMs = String(Math.round(performance.now()));
      root.dataset.ready = "1";
    } catch (error) {
      console.error(error);
      showError(error);
    }
    window.setTimeout(cycle, refreshSeconds() * 1000);
  }

  const every = document.getElementById("dashboard-every");
  if (every) every.textContent = String(refreshSeconds());
  window.atbDashboard = { charts, config, reload: load };
  cycle();
})();
