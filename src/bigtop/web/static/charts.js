// Small live charts on uPlot (loaded as a plain script: the global `uPlot`).
import { bytes, clock } from "./format.js";

const CPU_COLOUR = "#58a6ff";
const MEM_COLOUR = "#3fb950";

function range(minimum) {
  return (u, min, max) => [0, Math.max(minimum, (max || 0) * 1.15)];
}

/**
 * A chart of CPU (left scale, %) and memory (right scale, bytes) in `element`.
 * `axes: false` gives a sparkline. The container carries data-points, the number of
 * points drawn, so tests (and curious people) can see it move.
 */
export class LiveChart {
  constructor(element, { height = 70, axes = false } = {}) {
    this.element = element;
    this.axes = axes;
    const axis = { show: axes, stroke: "#8b949e", grid: { stroke: "#222a33", width: 1 }, ticks: { show: false } };
    const options = {
      width: Math.max(120, element.clientWidth || 300),
      height,
      legend: { show: false },
      cursor: { show: axes, points: { show: false }, drag: { x: false, y: false } },
      padding: axes ? [8, 4, 0, 4] : [2, 0, 2, 0],
      scales: { x: { time: true }, cpu: { range: range(5) }, mem: { range: range(1024 * 1024) } },
      axes: [
        { ...axis, size: axes ? 28 : 0, space: 70, values: (u, ticks) => ticks.map((t) => clock(t)) },
        { ...axis, scale: "cpu", size: axes ? 44 : 0, values: (u, ticks) => ticks.map((t) => `${t}%`) },
        {
          ...axis,
          scale: "mem",
          side: 1,
          size: axes ? 64 : 0,
          grid: { show: false },
          values: (u, ticks) => ticks.map((t) => bytes(t)),
        },
      ],
      series: [
        {},
        { label: "CPU", scale: "cpu", stroke: CPU_COLOUR, width: 1.5, fill: "rgba(88,166,255,0.12)", points: { show: false } },
        { label: "Memory", scale: "mem", stroke: MEM_COLOUR, width: 1.5, points: { show: false } },
      ],
    };
    this.plot = new uPlot(options, [[], [], []], element);
    this.points = 0;
    element.dataset.points = "0";
    this.observer = new ResizeObserver(() => this.resize()); // follow the card's width
    this.observer.observe(element);
  }

  set(columns) {
    this.plot.setData(columns);
    this.points = columns[0].length;
    this.element.dataset.points = String(this.points);
  }

  resize() {
    const width = this.element.clientWidth;
    if (width > 0 && Math.abs(width - this.plot.width) > 2) {
      this.plot.setSize({ width, height: this.plot.height });
    }
  }

  destroy() {
    this.observer.disconnect();
    this.plot.destroy();
  }
}
