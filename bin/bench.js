#!/usr/bin/env node
// Runs the TypeScript benchmark harness (bench/run.ts) through tsx, like bin/oms.js does for the CLI.
import { register } from 'tsx/esm/api';

register();
await import('../bench/run.ts');
