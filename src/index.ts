/** The package's entry point: `import { SensoryClient } from 'sensory'`. */
export * from './sdk/index.js';
