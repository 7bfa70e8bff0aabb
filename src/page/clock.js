// Ticks the clock on the server's time and measures how far the visitor's
// clock is off, NTP-style: several GET /now, the fastest round trip wins.
// The measured figures are also set as data-* attributes of #offset.
"use strict";
(() => {
  const SAMPLES = 8;
  const REMEASURE_MS = 120000;
  const TIMEOUT_MS = 5000;
  const $ = (id) => document.getElementById(id);
  const [clock, zone, offset, how, state, bound] =
    ["clock", "zone", "offset", "how", "state", "bound"].map($);
  // 24-hour, as the server renders it for a browser without JavaScript.
  const timeText = new Intl.DateTimeFormat(undefined,
    { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  const dateText = new Intl.DateTimeFormat(undefined,
    { weekday: "long", day: "numeric", month: "long", year: "numeric" });
  const zoneName = Intl.DateTimeFormat().resolvedOptions().timeZone || "Local time";
  let ahead = null; // the visitor's clock minus the server's, ms
  let ticking = 0;
  let measuring = false;
  let measurements = 0;
  let lastMeasured = 0;
  let next = 0;

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  // Shows the server's time now and wakes just after its next second turns.
  function tick() {
    const now = Date.now() - ahead;
    const d = new Date(now);
    setText(clock, timeText.format(d));
    clock.dateTime = d.toISOString();
    setText(zone, zoneName + ", " + dateText.format(d));
    clearTimeout(ticking);
    ticking = setTimeout(tick, 1005 - (((now % 1000) + 1000) % 1000));
  }

  // One exchange. Date.now() counts whole milliseconds, so each reading may be
  // up to 1 ms late: the server read its clock between t0 and t3 + 1.
  async function sample() {
    const t0 = Date.now();
    const r = await fetch("/now", {
      headers: { Accept: "application/json" },
      cache: "no-store",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const t3 = Date.now();
    if (!r.ok) throw new Error("the server answered " + r.status);
    const j = await r.json();
    // A double holds unix_ns to within 256 ns: far below a millisecond.
    const server = j.unix_ns / 1e6;
    return { ahead: (t0 + t3 + 1) / 2 - server, within: (t3 - t0 + 1) / 2, rtt: t3 - t0, json: j };
  }

  // A number and its unit never part at a line end.
  const NBSP = "\u00a0";

  // "1.2 ms", "250 ms", "2.01 s": as the server words it (src/page.rs).
  function micros(us) {
    if (us < 10000) {
      const tenths = Math.round(us / 100);
      return Math.floor(tenths / 10) + "." + (tenths % 10) + NBSP + "ms";
    }
    if (us < 1000000) return Math.round(us / 1000) + NBSP + "ms";
    return (us / 1e6).toFixed(2) + NBSP + "s";
  }

  function serverState(j) {
    const c = j.clock;
    const r = j.reference || {};
    setText(state, c === null ? "unknown (the kernel did not say)"
      : c.synchronized ? "synchronised" : "not synchronised");
    setText(bound, "error_bound_us" in r
      ? "±" + micros(r.error_bound_us) + " against its time source"
      : "unknown: " + r.unknown);
  }

  // "2.4 s", "3 min 20.5 s", "2 d 1 h 0 min 3.0 s"
  function span(ms, digits) {
    let s = Math.abs(ms) / 1000;
    const parts = [];
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60]]) {
      if (s >= size || parts.length) {
        parts.push(Math.floor(s / size) + NBSP + unit);
        s %= size;
      }
    }
    parts.push(s.toFixed(digits) + NBSP + "s");
    return parts.join(" ");
  }

  function describe(best) {
    // As many decimals as the uncertainty allows, rounded up: never claims more.
    const digits = Math.min(3, Math.max(1, Math.ceil(-Math.log10(best.within / 1000))));
    const scale = 10 ** digits;
    const within =
      "±" + (Math.ceil((best.within / 1000) * scale) / scale).toFixed(digits) + NBSP + "s";
    if (Math.abs(best.ahead) <= best.within) {
      return "Your clock is right: it agrees with this server to within " + within + ".";
    }
    const way = best.ahead > 0 ? "ahead" : "behind";
    return "Your clock is " + span(best.ahead, digits) + " " + way + " (" + within + ").";
  }

  async function measure() {
    if (measuring) return;
    measuring = true;
    let best = null;
    try {
      for (let i = 0; i < SAMPLES; i++) {
        const s = await sample();
        if (best === null || s.within < best.within) best = s;
        // The clock ticks on the best figure so far; the words wait for all.
        ahead = best.ahead;
        tick();
      }
      measurements += 1;
      lastMeasured = Date.now();
      Object.assign(offset.dataset, {
        offsetMs: best.ahead.toFixed(3),
        uncertaintyMs: best.within.toFixed(3),
        rttMs: best.rtt.toFixed(3),
        samples: String(SAMPLES),
        measurements: String(measurements),
      });
      setText(offset, describe(best));
      setText(how, "Measured from the fastest of " + SAMPLES + " round trips to this server ("
        + Math.round(best.rtt) + NBSP + "ms), again every two minutes.");
      serverState(best.json);
    } catch (e) {
      offset.dataset.error = String(e);
      setText(offset, "Could not measure your clock: " + e.message
        + ". Trying again in two minutes.");
    } finally {
      measuring = false;
      clearTimeout(next);
      next = setTimeout(measure, REMEASURE_MS);
    }
  }

  // A computer that slept or a tab put away: measure again on return.
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && Date.now() - lastMeasured > 10000) measure();
  });
  setText(offset, "Measuring your clock…");
  measure();
})();
