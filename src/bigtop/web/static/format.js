// Pure helpers: formatting figures and keeping fixed-size series. No DOM here.

export const SERIES_POINTS = 120;

/** Append one point to uPlot columns [[t], [cpu], [mem]], keeping at most `cap` points. */
export function pushPoint(columns, t, cpu, mem, cap = SERIES_POINTS) {
  columns[0].push(t);
  columns[1].push(cpu);
  columns[2].push(mem);
  while (columns[0].length > cap) {
    for (const column of columns) column.shift();
  }
  return columns;
}

export function emptySeries() {
  return [[], [], []];
}

export function bytes(value) {
  if (value === null || value === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = value;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return `${n.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function percent(value) {
  return value === null || value === undefined ? "–" : `${value.toFixed(1)} %`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

export function clock(epoch) {
  if (!epoch) return "–";
  return new Date(epoch * 1000).toLocaleTimeString([], { hour12: false });
}

/** The exit of a process in words: "exit 3", "SIGKILL", "-". */
export function exitText(entry) {
  if (entry.signal !== null && entry.signal !== undefined) return `signal ${entry.signal}`;
  if (entry.exit_code !== null && entry.exit_code !== undefined) return `exit ${entry.exit_code}`;
  return "–";
}

/** One line per event: its payload as key=value, time left out. */
export function eventDetails(data) {
  return Object.entries(data || {})
    .filter(([key]) => key !== "time")
    .map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(" ");
}

export function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** When a process was replaced: "at once", "in 2s", or "no" (not restarted). */
export function restartText(delay) {
  if (delay === null || delay === undefined) return "no";
  return delay <= 0 ? "at once" : `in ${Number(delay.toFixed(2))}s`;
}
