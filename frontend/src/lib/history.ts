// Time series for the charts, in uPlot's column layout. A disconnect is recorded as a
// row of nulls so the lines break there instead of pretending to be continuous.

export const SERIES = ['rps', 'p50', 'p90', 'p99', 'connections', 'websockets'] as const;
export type SeriesName = (typeof SERIES)[number];

export type Point = Record<SeriesName, number | null>;

export class History {
  /** seconds (client clock) */
  readonly x: number[] = [];
  readonly y: Record<SeriesName, (number | null)[]>;

  constructor(readonly windowSeconds = 120) {
    this.y = Object.fromEntries(SERIES.map((k) => [k, []])) as unknown as Record<SeriesName, (number | null)[]>;
  }

  get length(): number {
    return this.x.length;
  }

  push(tSeconds: number, p: Partial<Point>): void {
    const last = this.x[this.x.length - 1];
    if (last !== undefined && tSeconds <= last) tSeconds = last + 0.001; // keep x increasing
    this.x.push(tSeconds);
    for (const k of SERIES) this.y[k].push(p[k] ?? null);
    this.trim(tSeconds);
  }

  /** Break every line at `tSeconds` (once per gap). */
  pushGap(tSeconds: number): void {
    if (this.x.length === 0) return;
    if (SERIES.every((k) => this.y[k][this.y[k].length - 1] === null)) return;
    this.push(tSeconds, {});
  }

  private trim(now: number): void {
    const cutoff = now - this.windowSeconds;
    let n = 0;
    while (n < this.x.length - 1 && this.x[n] < cutoff) n++;
    if (n > 0) {
      this.x.splice(0, n);
      for (const k of SERIES) this.y[k].splice(0, n);
    }
  }

  /** uPlot AlignedData for the given series. */
  data(names: readonly SeriesName[]): [number[], ...(number | null)[][]] {
    return [this.x.slice(), ...names.map((k) => this.y[k].slice())];
  }
}
