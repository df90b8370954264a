/* How the dashboard writes a figure: one function per kind, deterministic.
 *
 * The twin of trading/display.py (the rule book; docs/DESIGN.md, "Numbers a desk can read").
 * Money and other decimals arrive as decimal strings and are rounded as decimals (half away
 * from zero), never through a binary float, so "0.125" shows as "0.13" wherever it is drawn.
 * Ratios arrive as JSON numbers; they are written with Number#toFixed, which rounds the exact
 * binary value half away from zero (Python: Decimal(x).quantize(..., ROUND_HALF_UP)).
 * tests/browser/test_dashboard.py runs both on the same cases; keep the two in step.
 */
(function () {
  "use strict";

  const DASH = "\u2014";
  const UNKNOWN = "unknown";
  const CURRENCY = "USD";

  /* "1.5E+3" / "-0.00012" / 12 -> a plain decimal string without exponent. */
  function plain(raw) {
    // A number is read from its shortest spelling ("0.1", "1e-7"), as Python's repr writes it.
    const s = String(raw).trim();
    const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(s);
    if (!m) return s;
    const sign = m[1] === "-" ? "-" : "";
    let int = m[2] || "0";
    let frac = m[3] || "";
    let exp = Number(m[4] || 0);
    if (exp > 0) {
      frac = frac.padEnd(exp, "0");
      int += frac.slice(0, exp);
      frac = frac.slice(exp);
    } else if (exp < 0) {
      int = int.padStart(-exp + 1, "0");
      frac = int.slice(int.length + exp) + frac;
      int = int.slice(0, int.length + exp);
    }
    int = int.replace(/^0+(?=\d)/, "");
    return sign + int + (frac ? "." + frac : "");
  }

  function group(int) {
    return int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  /* A decimal string rounded half away from zero to `places`, with thousands separators. */
  function decimal(raw, places) {
    if (typeof raw === "number") {
      const text = Math.abs(raw).toFixed(places);
      const zero = /^[0.]+$/.test(text);
      const [int, frac] = text.split(".");
      return (raw < 0 && !zero ? "-" : "") + group(int) + (frac ? "." + frac : "");
    }
    let s = plain(raw);
    let negative = s.startsWith("-");
    if (negative) s = s.slice(1);
    const [int, frac = ""] = s.split(".");
    let units = BigInt(int + frac.padEnd(places, "0").slice(0, places));
    if (frac.length > places && Number(frac[places]) >= 5) units += 1n;
    if (units === 0n) negative = false;
    let digits = units.toString().padStart(places + 1, "0");
    const head = digits.slice(0, digits.length - places);
    const tail = digits.slice(digits.length - places);
    return (negative ? "-" : "") + group(head) + (places ? "." + tail : "");
  }

  /* A decimal string as given, without trailing zeros, with thousands separators. */
  function trimmed(raw) {
    const s = plain(raw);
    const negative = s.startsWith("-");
    let [int, frac = ""] = (negative ? s.slice(1) : s).split(".");
    frac = frac.replace(/0+$/, "");
    const zero = /^0*$/.test(int + frac);
    return (negative && !zero ? "-" : "") + group(int) + (frac ? "." + frac : "");
  }

  function duration(raw) {
    let s = Math.floor(Number(raw) + 0.5);
    const negative = s < 0;
    s = Math.abs(s);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    let text;
    if (d) text = `${d}d ${two(h)}h`;
    else if (h) text = `${h}h ${two(m)}m`;
    else if (m) text = `${m}m ${two(sec)}s`;
    else text = `${sec}s`;
    return (negative ? "-" : "") + text;
  }

  function time(raw) {
    const date = new Date(raw);
    if (Number.isNaN(date.getTime())) return String(raw);
    return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  /* A price at its market's places; "unknown" when there is none. */
  function price(raw, places) {
    if (raw === null || raw === undefined || raw === "") return UNKNOWN;
    return places === null || places === undefined ? trimmed(raw) : decimal(raw, places);
  }

  /* A risk limit or actual value with its unit (trading/display.py RISK_UNITS, _UNIT_KINDS). */
  const UNIT_KINDS = { usd: "usd", pct: "pct", x: "leverage", seconds: "duration" };

  function limit(raw, unit) {
    return format(UNIT_KINDS[unit] || "qty", raw);
  }

  /* The text shown for a value of a kind; null and undefined are a dash (a price: unknown).
   * ctx: {places} for a price (its market's), {unit} for a risk limit or actual value. */
  function format(kind, raw, ctx) {
    if (kind === "price") return price(raw, ctx ? ctx.places : null);
    if (kind === "limit") return limit(raw, ctx ? ctx.unit : null);
    if (raw === null || raw === undefined || raw === "") return DASH;
    switch (kind) {
      case "usd":
        return `${decimal(raw, 2)} ${CURRENCY}`;
      case "pct":
        return decimal(raw, 2) + "%";
      case "percent": // a fraction (0..1) shown as a percentage
        return typeof raw === "number"
          ? decimal(raw * 100, 2) + "%"
          : decimal(shift(raw, 2), 2) + "%";
      case "ratio":
        return decimal(raw, 4);
      case "int":
        return typeof raw === "number" ? decimal(raw, 0) : trimmed(raw);
      case "number":
        return typeof raw === "number" && Number.isInteger(raw) ? decimal(raw, 0) : decimal(raw, 2);
      case "qty":
        return trimmed(raw);
      case "leverage":
        return trimmed(raw) + "x";
      case "duration":
        return duration(raw);
      case "time":
        return time(raw);
      case "month":
        return String(raw).slice(0, 7);
      case "bool":
        return raw ? "yes" : "no";
      default:
        return typeof raw === "object" ? JSON.stringify(raw) : String(raw);
    }
  }

  /* A decimal string times 10^places, exactly. */
  function shift(raw, places) {
    const s = plain(raw);
    const negative = s.startsWith("-");
    const [int, frac = ""] = (negative ? s.slice(1) : s).split(".");
    const padded = frac.padEnd(places, "0");
    return (negative ? "-" : "") + int + padded.slice(0, places) + "." + (padded.slice(places) || "0");
  }

  /* The raw API value as text, for data-value: strings as given, numbers in JSON's spelling. */
  function rawText(raw) {
    if (raw === null || raw === undefined) return "";
    if (typeof raw === "string") return raw;
    return JSON.stringify(raw);
  }

  /* -1, 0 or 1: the sign of a figure, for colouring gains and losses. */
  function sign(raw) {
    if (raw === null || raw === undefined || raw === "") return 0;
    const s = plain(raw);
    if (/^-?[0.]*$/.test(s)) return 0;
    return s.startsWith("-") ? -1 : 1;
  }

  window.atbFormat = { format, rawText, sign, plain, decimal, trimmed, duration, time, DASH, UNKNOWN, CURRENCY };
})();
