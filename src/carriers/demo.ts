// The demo's carrier configuration: French and European services a mid-size French retailer
// would contract in 2026, at plausible negotiated rates (euro cents, VAT excluded). Codes are
// generic; the carrier names say which real offer each one resembles.
import type { CarrierConfig, CarrierService, CarrierZone, WeightBand } from './model.ts';

/** French public holidays (jours fériés, mainland; Alsace-Moselle adds Good Friday and 26 December). */
export const FR_PUBLIC_HOLIDAYS_2026_2027: string[] = [
  '2026-01-01', // Jour de l'an
  '2026-04-06', // Lundi de Pâques
  '2026-05-01', // Fête du Travail
  '2026-05-08', // Victoire 1945
  '2026-05-14', // Ascension
  '2026-05-25', // Lundi de Pentecôte
  '2026-07-14', // Fête nationale
  '2026-08-15', // Assomption
  '2026-11-01', // Toussaint
  '2026-11-11', // Armistice
  '2026-12-25', // Noël
  '2027-01-01',
  '2027-03-29',
  '2027-05-01',
  '2027-05-06',
  '2027-05-08',
  '2027-05-17',
  '2027-07-14',
  '2027-08-15',
  '2027-11-01',
  '2027-11-11',
  '2027-12-25',
];

/** The 27 EU member states (ISO codes: Greece is GR). */
export const EU_COUNTRIES = [
  'AT', 'BE', 'BG', 'CY', 'CZ', 'DE', 'DK', 'EE', 'ES', 'FI', 'FR', 'GR', 'HR', 'HU', 'IE', 'IT', 'LT', 'LU', 'LV', 'MT', 'NL', 'PL', 'PT', 'RO', 'SE', 'SI', 'SK',
];
/** Europe outside the EU, priced between the EU and the rest of the world. */
export const EUROPE_OTHER_COUNTRIES = ['AD', 'AL', 'BA', 'CH', 'GB', 'IS', 'LI', 'MC', 'ME', 'MK', 'NO', 'RS', 'SM', 'VA'];
/** Where a Mondial Relay–like network has relay points. */
export const RELAY_NETWORK_COUNTRIES = ['AT', 'BE', 'DE', 'ES', 'IT', 'LU', 'NL', 'PL', 'PT'];

const DOMESTIC: CarrierZone = { name: 'domestic', countries: ['@origin'] };
const bands = (rows: [upToG: number, cost: number][]): WeightBand[] => rows.map(([upToG, cost]) => ({ upToG, cost }));

const PARIS = 'Europe/Paris';

export const DEMO_CARRIER_SERVICES: CarrierService[] = [
  {
    code: 'home_standard',
    name: 'Home delivery, standard (48 h)',
    carrier: 'Colissimo-like national post',
    modes: ['home'],
    serviceLevel: 'standard',
    originCountries: ['FR'],
    zones: [DOMESTIC],
    maxWeightG: 30_000,
    maxLengthMm: 1_000,
    maxSumDimensionsMm: 1_500,
    currency: 'EUR',
    costTable: {
      domestic: bands([
        [250, 495],
        [500, 595],
        [750, 675],
        [1_000, 735],
        [2_000, 850],
        [5_000, 1_295],
        [10_000, 1_895],
        [15_000, 2_195],
        [30_000, 2_795],
      ]),
    },
    leadTimeDays: 2,
    cutoff: '16:00',
    timeZone: PARIS,
    pickupPoint: false,
    active: true,
  },
  {
    code: 'home_express',
    name: 'Home delivery, express (next day before 13:00)',
    carrier: 'Chronopost-like express',
    modes: ['home'],
    serviceLevel: 'express',
    originCountries: ['FR'],
    zones: [DOMESTIC],
    maxWeightG: 30_000,
    maxLengthMm: 1_500,
    maxSumDimensionsMm: 2_000,
    currency: 'EUR',
    costTable: {
      domestic: bands([
        [1_000, 1_390],
        [2_000, 1_590],
        [5_000, 1_990],
        [10_000, 2_590],
        [20_000, 3_490],
        [30_000, 4_490],
      ]),
    },
    leadTimeDays: 1,
    cutoff: '13:00',
    timeZone: PARIS,
    pickupPoint: false,
    active: true,
  },
  {
    code: 'relay_point',
    name: 'Relay point (3–4 days)',
    carrier: 'Mondial Relay–like relay network',
    modes: ['pickup_point'],
    serviceLevel: 'standard',
    originCountries: ['FR'],
    zones: [DOMESTIC, { name: 'eu', countries: RELAY_NETWORK_COUNTRIES }],
    maxWeightG: 30_000,
    maxLengthMm: 1_200,
    maxSumDimensionsMm: 1_500,
    currency: 'EUR',
    costTable: {
      domestic: bands([
        [500, 349],
        [1_000, 399],
        [2_000, 499],
        [5_000, 749],
        [10_000, 1_099],
        [20_000, 1_599],
        [30_000, 2_199],
      ]),
      eu: bands([
        [500, 599],
        [1_000, 699],
        [2_000, 899],
        [5_000, 1_299],
        [10_000, 1_799],
        [20_000, 2_499],
        [30_000, 3_199],
      ]),
    },
    // "3–4 days" on the carrier's site: the promise takes the upper figure.
    leadTimeDays: 4,
    zoneLeadTimeDays: { eu: 6 },
    cutoff: '14:00',
    timeZone: PARIS,
    pickupPoint: true,
    active: true,
  },
  {
    code: 'international',
    name: 'International home delivery (4–8 days)',
    carrier: 'Colissimo International–like',
    modes: ['home'],
    serviceLevel: 'standard',
    originCountries: EU_COUNTRIES, // a European network: our drop-ship suppliers in the EU hand parcels to it too
    zones: [
      { name: 'eu', countries: EU_COUNTRIES },
      { name: 'europe_other', countries: EUROPE_OTHER_COUNTRIES },
      { name: 'world', countries: ['*'] },
    ],
    maxWeightG: 30_000,
    maxLengthMm: 1_500,
    maxSumDimensionsMm: 2_000,
    currency: 'EUR',
    costTable: {
      eu: bands([
        [500, 1_190],
        [1_000, 1_390],
        [2_000, 1_590],
        [5_000, 2_290],
        [10_000, 3_390],
        [30_000, 5_990],
      ]),
      europe_other: bands([
        [500, 1_590],
        [1_000, 1_890],
        [2_000, 2_190],
        [5_000, 3_190],
        [10_000, 4_690],
        [30_000, 7_990],
      ]),
      world: bands([
        [500, 2_490],
        [1_000, 2_990],
        [2_000, 3_990],
        [5_000, 5_990],
        [10_000, 9_490],
        [30_000, 15_990],
      ]),
    },
    leadTimeDays: 8,
    zoneLeadTimeDays: { eu: 4, europe_other: 6 },
    cutoff: '15:00',
    timeZone: PARIS,
    pickupPoint: false,
    active: true,
  },
  {
    code: 'store_transfer',
    name: 'Store shuttle (warehouse → store, 2 days)',
    carrier: 'Own fleet',
    modes: ['store_transfer', 'click_and_collect'],
    serviceLevel: 'standard',
    originCountries: ['FR'],
    zones: [DOMESTIC],
    // A tote or carton in a roll cage, not a whole pallet.
    maxWeightG: 50_000,
    maxLengthMm: 1_200,
    maxSumDimensionsMm: 2_500,
    currency: 'EUR',
    costTable: {
      domestic: bands([
        [5_000, 150],
        [20_000, 250],
        [50_000, 400],
      ]),
    },
    leadTimeDays: 2,
    cutoff: '18:00',
    timeZone: PARIS,
    pickupPoint: false,
    active: true,
  },
];

export const DEMO_CARRIER_CONFIG: CarrierConfig = {
  holidays: { FR: FR_PUBLIC_HOLIDAYS_2026_2027 },
  services: DEMO_CARRIER_SERVICES,
};
