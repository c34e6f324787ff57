import type { Summary } from './pool.js';

/** One figure of the report: ours beside its reference, and how bench/run.ts prints it. */
export interface Figure {
  id: string;
  title: string;
  unit: string;
  ours: Summary;
  reference?: Summary;
  ratio?: number;
  target?: number;
  verdict?: 'PASS' | 'BELOW' | 'info';
  details: Record<string, unknown>;
  /** The figure's own rows of the report table (run.ts builds them for figures 1–3 otherwise). */
  rows?: string[][];
  runsLine?: string;
  cpuLine?: string;
}
