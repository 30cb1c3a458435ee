// Reads the carrier configuration at start-up: the file named by OMS_CARRIERS_FILE, checked
// by validateCarrierConfig (a bad file stops the start with every problem listed), or the
// built-in demo services.
import fs from 'node:fs';
import { DEMO_CARRIER_CONFIG, validateCarrierConfig } from './config.ts';
import type { CarrierConfig } from './model.ts';

export function loadCarrierConfig(file: string | null | undefined): CarrierConfig {
  if (!file) return DEMO_CARRIER_CONFIG;
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`OMS_CARRIERS_FILE ${file}: cannot read it as JSON (${(e as Error).message})`);
  }
  const result = validateCarrierConfig(json);
  if (!result.ok) throw new Error(`OMS_CARRIERS_FILE ${file}: ${result.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  return result.config;
}
