import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import { useColorScheme } from '../hooks';
import { formatClock } from '../lib/format';

export interface ChartSeries {
  label: string;
  /** CSS custom property holding the colour, e.g. `--c-rps` */
  colorVar: string;
}

interface Props {
  title: string;
  series: ChartSeries[];
  data: uPlot.AlignedData;
  formatY: (v: number) => string;
  /** one-line text alternative for the canvas */
  summary: string;
  testId: string;
  height?: number;
  /** visible x range, seconds (a sliding window on the client clock) */
  xRange: [number, number];
  /** spans without data (seconds), shaded */
  gaps: [number, number][];
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

export function Chart({ title, series, data, formatY, summary, testId, xRange, gaps, height = 160 }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const dataRef = useRef(data);
  dataRef.current = data;
  const fmt = useRef(formatY);
  fmt.current = formatY;
  const range = useRef(xRange);
  range.current = xRange;
  const gapRef = useRef(gaps);
  gapRef.current = gaps;
  const scheme = useColorScheme();
  const labels = series.map((s) => s.label + s.colorVar).join();

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const axis = cssVar('--fg-muted');
    const grid = cssVar('--grid');
    const gapFill = cssVar('--gap-fill');
    const gapText = cssVar('--fg-muted');
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height,
      legend: { show: true, live: false },
      cursor: { show: true, drag: { x: false, y: false } },
      hooks: {
        drawAxes: [
          (u: uPlot) => {
            const ctx = u.ctx;
            const { left, top, width, height: h } = u.bbox;
            ctx.save();
            ctx.beginPath();
            ctx.rect(left, top, width, h);
            ctx.clip();
            ctx.fillStyle = gapFill;
            for (const [a, b] of gapRef.current) {
              const x0 = Math.max(left, u.valToPos(a, 'x', true));
              const x1 = Math.min(left + width, u.valToPos(b, 'x', true));
              if (x1 <= x0) continue;
              ctx.fillRect(x0, top, x1 - x0, h);
              if (x1 - x0 > 60 * devicePixelRatio) {
                ctx.fillStyle = gapText;
                ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
                ctx.textAlign = 'center';
                ctx.fillText('no data', (x0 + x1) / 2, top + 16 * devicePixelRatio);
                ctx.fillStyle = gapFill;
              }
            }
            ctx.restore();
          },
        ],
      },
      scales: { x: { time: true, range: () => range.current }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [
        {
          stroke: axis,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid },
          space: 70,
          values: (_u, vals) => vals.map((v) => formatClock(v * 1000)),
        },
        {
          stroke: axis,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid },
          size: 64,
          values: (_u, vals) => vals.map((v) => fmt.current(v)),
        },
      ],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: cssVar(s.colorVar),
          width: 2,
          spanGaps: false,
          points: { show: false },
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '—' : fmt.current(v)),
        })),
      ],
    };
    const u = new uPlot(opts, dataRef.current, el);
    plot.current = u;
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      if (Math.abs(w - u.width) > 1) u.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // recreate when colours or series change
  }, [scheme, labels, height]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    plot.current?.setData(data);
  }, [data, xRange[1], gaps]); // eslint-disable-line react-hooks/exhaustive-deps

  return (
    <figure className="chart" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={`${title}. ${summary}`} className="chart-canvas" />
    </figure>
  );
}
