// Pure carrier model: what a carrier service is (configuration, not code), and the small rules
// every caller shares: which zone a destination falls in, what a parcel costs, how long it takes.
// No I/O here; the selector and the config validator build on these.

export const DELIVERY_MODES = ['home', 'pickup_point', 'click_and_collect', 'in_store', 'store_transfer'] as const;
/**
 * How the goods reach the customer. `store_transfer` moves goods between two of our own locations
 * (e.g. warehouse → store for click & collect); `in_store` is take-now and needs no carrier.
 */
export type DeliveryMode = (typeof DELIVERY_MODES)[number];

export const SERVICE_LEVELS = ['standard', 'express'] as const;
export type ServiceLevel = (typeof SERVICE_LEVELS)[number];

/** In a zone's country list: the shipment's own origin country (a domestic zone). */
export const ORIGIN_TOKEN = '@origin';
/** In a zone's country list or a service's origins: any country. */
export const ANY_COUNTRY = '*';

/**
 * A named group of destination countries, relative to the origin. A zone matches a domestic
 * shipment (destination = origin) only if it lists `@origin`; explicit countries and `*` match
 * only cross-border shipments. So "eu" may list FR and still never price a FR → FR parcel.
 */
export interface CarrierZone {
  name: string;
  countries: string[];
}

/** Price of a parcel up to `upToG` grams (inclusive), in integer minor units of the service currency. */
export interface WeightBand {
  upToG: number;
  cost: number;
}

export interface CarrierService {
  /** Stable identifier, lower snake case, unique in a configuration. */
  code: string;
  name: string;
  /** Who carries it (a carrier's name, or our own fleet). */
  carrier: string;
  modes: DeliveryMode[];
  serviceLevel: ServiceLevel;
  /** ISO 3166-1 alpha-2 countries parcels may leave from; `*` for any. */
  originCountries: string[];
  /** Destination zones, tried in order; the first that matches prices the parcel. */
  zones: CarrierZone[];
  maxWeightG: number;
  /**
   * Size rule (the one La Poste and Mondial Relay publish): the longest side must not exceed
   * `maxLengthMm`, and length + width + height must not exceed `maxSumDimensionsMm`.
   */
  maxLengthMm: number;
  maxSumDimensionsMm: number;
  /** ISO 4217 code of every cost in `costTable`. */
  currency: string;
  /** Per zone name: weight bands in strictly ascending `upToG`. */
  costTable: Record<string, WeightBand[]>;
  /** Business days from dispatch to delivery: the committed (upper) figure, since it is a promise. */
  leadTimeDays: number;
  /** Per-zone override of `leadTimeDays` (e.g. international: eu 4, world 8). */
  zoneLeadTimeDays?: Record<string, number>;
  /** Latest local time ('HH:MM', 24 h) a parcel can be ready and still leave that business day. */
  cutoff: string;
  /** IANA time zone of `cutoff` and of the service's calendar days, e.g. Europe/Paris. */
  timeZone: string;
  /** Delivers to relay/pickup points; true exactly when `modes` includes `pickup_point`. */
  pickupPoint: boolean;
  active: boolean;
}

/**
 * A whole carrier configuration as a retailer edits it. Public holidays are keyed by origin
 * country: a parcel neither leaves nor travels on a holiday of the country it leaves from.
 */
export interface CarrierConfig {
  holidays: Record<string, string[]>;
  services: CarrierService[];
}

/** The zone that prices `origin → destination` for this service, or null if none covers it. */
export function resolveZone(service: CarrierService, origin: string, destination: string): CarrierZone | null {
  const domestic = origin === destination;
  for (const zone of service.zones) {
    const hit = domestic
      ? zone.countries.includes(ORIGIN_TOKEN)
      : zone.countries.includes(destination) || zone.countries.includes(ANY_COUNTRY);
    if (hit) return zone;
  }
  return null;
}

export const servesOrigin = (service: CarrierService, origin: string): boolean =>
  service.originCountries.includes(ANY_COUNTRY) || service.originCountries.includes(origin);

/** Cost of a parcel of `weightG` in a zone: the first band whose `upToG` covers it; null when none does. */
export function bandCost(service: CarrierService, zone: string, weightG: number): number | null {
  const bands = service.costTable[zone];
  if (!bands) return null;
  for (const band of bands) if (weightG <= band.upToG) return band.cost;
  return null;
}

export const leadTimeFor = (service: CarrierService, zone: string): number => service.zoneLeadTimeDays?.[zone] ?? service.leadTimeDays;
