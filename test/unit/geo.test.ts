// Offline geocoding (src/geo/places.ts): each case gives the expected precision and, when a point
// is expected, the true position (town hall or centre, from public maps) and how far from it the
// answer may be. Paris and Lyon arrondissements have no coordinates of their own in the data: they
// resolve to their city's centre (75015 is ~4 km from it).
import { beforeAll, describe, expect, it } from 'vitest';
import { type GeoPoint, type GeoPrecision, distanceKm, loadPlaces, normaliseName, resolvePlace } from '../../src/geo/places.ts';

type Input = Parameters<typeof resolvePlace>[0];
const at = (latitude: number, longitude: number): GeoPoint => ({ latitude, longitude });

beforeAll(() => loadPlaces()); // the one-time load (~1 s) is not charged to the first case

describe('resolvePlace: French postal codes', () => {
  it.each<[string, Input, GeoPrecision, GeoPoint, number, RegExp]>([
    ['Paris 1er', { country: 'FR', postalCode: '75001' }, 'postal_code', at(48.8625, 2.3364), 3, /75001 → Paris 1er Arrondissement, at the centre of Paris/],
    ['Paris 15e', { country: 'FR', postalCode: '75015' }, 'postal_code', at(48.8412, 2.3003), 5, /Paris 15e Arrondissement/],
    ['Lyon 3e', { country: 'FR', postalCode: '69003' }, 'postal_code', at(45.7594, 4.8497), 3, /69003 → Lyon 3e Arrondissement/],
    ['Marseille 8e (its own point)', { country: 'FR', postalCode: '13008' }, 'postal_code', at(43.26, 5.385), 4, /^postal code 13008 → Marseille 8e Arrondissement \(/],
    ['Marseille 8e, city "Marseille"', { country: 'FR', postalCode: '13008', city: 'Marseille' }, 'postal_code', at(43.26, 5.385), 4, /Marseille 8e/],
    ['Ajaccio (2A)', { country: 'FR', postalCode: '20000' }, 'postal_code', at(41.9192, 8.7386), 3, /Ajaccio/],
    ['Saint-Denis, Réunion', { country: 'FR', postalCode: '97400' }, 'postal_code', at(-20.8789, 55.4481), 5, /Saint-Denis/],
    ['Saint-Denis, country RE', { country: 'RE', postalCode: '97400' }, 'postal_code', at(-20.8789, 55.4481), 5, /Saint-Denis/],
    ['spaces and case', { country: 'fr', postalCode: ' 69 003 ' }, 'postal_code', at(45.7594, 4.8497), 3, /69003/],
    ['"FR-" prefix', { country: 'FR', postalCode: 'fr-69003' }, 'postal_code', at(45.7594, 4.8497), 3, /69003/],
    ['a number', { country: 'FR', postalCode: 69003 as unknown as string }, 'postal_code', at(45.7594, 4.8497), 3, /69003/],
    // 01400 serves ten communes: the city picks one, else the most populous located one.
    ['01400 alone', { country: 'FR', postalCode: '01400' }, 'postal_code', at(46.1183, 4.9567), 3, /Châtillon-sur-Chalaronne/],
    ['01400 Neuville-les-Dames', { country: 'FR', postalCode: '01400', city: 'NEUVILLE LES DAMES' }, 'postal_code', at(46.1644, 5.0061), 3, /Neuville-les-Dames/],
    ['01400 Sandrans (no own point)', { country: 'FR', postalCode: '01400', city: 'Sandrans' }, 'postal_code', at(46.064, 4.984), 10, /Sandrans, approximated by Châtillon-sur-Chalaronne/],
    ['01400 with a city it does not serve', { country: 'FR', postalCode: '01400', city: 'Lyon' }, 'postal_code', at(46.1183, 4.9567), 3, /"Lyon" is not among the communes of 01400/],
    ['commune déléguée named', { country: 'FR', postalCode: '74940', city: 'Annecy-le-Vieux' }, 'postal_code', at(45.9194, 6.1428), 3, /Annecy-le-Vieux/],
    ['only small communes: EPCI centre', { country: 'FR', postalCode: '01260' }, 'region', at(45.85, 5.63), 20, /approximated by the centre of CC Bugey Sud/],
    ['CEDEX code: département centre', { country: 'FR', postalCode: '75732' }, 'region', at(48.8566, 2.3522), 5, /75732 → centre of département 75 Paris/],
    ['CEDEX code with its city', { country: 'FR', postalCode: '75732', city: 'Paris Cedex 15' }, 'city', at(48.8566, 2.3522), 3, /city "Paris Cedex 15" → Paris/],
    ['coordinates out of range are ignored', { country: 'FR', postalCode: '69003', latitude: 145, longitude: 4 }, 'postal_code', at(45.7594, 4.8497), 3, /coordinates \(145, 4\) ignored/],
  ])('%s', (_name, input, precision, truth, km, source) => {
    const r = resolvePlace(input);
    expect(r.precision).toBe(precision);
    expect(r.point).not.toBeNull();
    expect(distanceKm(r.point!, truth)).toBeLessThan(km);
    expect(r.source).toMatch(source);
  });

  it.each<[string, Input, GeoPrecision, RegExp]>([
    // 00000 belongs to no département: nothing is better than a wrong region.
    ['bogus 00000', { country: 'FR', postalCode: '00000' }, 'not_found', /00000 matches no commune nor département/],
    ['98000 is Monaco, not France', { country: 'FR', postalCode: '98000' }, 'not_found', /98000/],
    ['not a postal code', { country: 'FR', postalCode: 'abc' }, 'not_found', /"abc" is not a French postal code/],
    ['a metropolitan code with country RE', { country: 'RE', postalCode: '75001' }, 'not_found', /75001/],
    ['postal codes of other countries are not resolved', { country: 'DE', postalCode: '10115' }, 'not_found', /France only/],
  ])('%s → %s', (_name, input, precision, source) => {
    const r = resolvePlace(input);
    expect(r).toMatchObject({ precision, point: null });
    expect(r.source).toMatch(source);
  });
});

describe('resolvePlace: city names', () => {
  it.each<[string, Input, GeoPoint, number, RegExp]>([
    ['FR Bordeaux', { country: 'FR', city: 'Bordeaux' }, at(44.8378, -0.5792), 3, /Bordeaux/],
    ['FR "ST ETIENNE"', { country: 'FR', city: 'ST ETIENNE' }, at(45.4397, 4.3872), 3, /Saint-Étienne/],
    ['FR Lyon is the city, not an arrondissement', { country: 'FR', city: 'lyon' }, at(45.7578, 4.832), 3, /→ Lyon \(/],
    ['FR "Paris 15e"', { country: 'FR', city: 'Paris 15e' }, at(48.8412, 2.3003), 5, /Paris 15e Arrondissement/],
    ['FR Sandrans (no own point)', { country: 'FR', city: 'Sandrans' }, at(46.064, 4.984), 10, /approximated by Châtillon-sur-Chalaronne/],
    ['IT Milano (GeoNames: Milan)', { country: 'IT', city: 'Milano' }, at(45.4642, 9.19), 3, /→ Milan \(/],
    ['DE Berlin', { country: 'DE', city: 'Berlin' }, at(52.52, 13.405), 3, /Berlin/],
    ['DEU München (alpha-3 country)', { country: 'DEU', city: 'München' }, at(48.1372, 11.5756), 3, /Munich/],
    ['BE Bruxelles', { country: 'BE', city: 'Bruxelles' }, at(50.8467, 4.3525), 3, /Brussels/],
    ['ES Sevilla', { country: 'ES', city: 'sevilla' }, at(37.3891, -5.9845), 3, /Sevilla/],
    ['DE Berlin with a postal code', { country: 'DE', postalCode: '10115', city: 'Berlin' }, at(52.52, 13.405), 3, /France only/],
  ])('%s', (_name, input, truth, km, source) => {
    const r = resolvePlace(input);
    expect(r.precision).toBe('city');
    expect(distanceKm(r.point!, truth)).toBeLessThan(km);
    expect(r.source).toMatch(source);
  });

  it.each<[string, Input]>([
    ['unknown city', { country: 'FR', city: 'Nulle-Part-sur-Rien' }],
    ['a French city asked in Italy', { country: 'IT', city: 'Bordeaux' }],
    ['unknown country', { country: 'XX', city: 'Berlin' }],
    ['nothing given', { country: 'FR' }],
  ])('%s → not_found', (_name, input) => {
    expect(resolvePlace(input)).toMatchObject({ precision: 'not_found', point: null });
  });
});

describe('resolvePlace: coordinates', () => {
  it('explicit valid coordinates win over the postal code and the city', () => {
    const r = resolvePlace({ country: 'FR', postalCode: '75001', city: 'Paris', latitude: 45.1885, longitude: 5.7245 });
    expect(r).toEqual({ point: at(45.1885, 5.7245), precision: 'coordinates', source: 'coordinates given (45.19, 5.72)' });
  });

  it.each<[string, number | null | undefined, number | null | undefined]>([
    ['latitude above 90', 91, 2],
    ['longitude below -180', 45, -181],
    ['NaN', Number.NaN, 2],
    ['Infinity', 45, Number.POSITIVE_INFINITY],
    ['0,0 (a missing value)', 0, 0],
    ['latitude alone', 45, null],
    ['longitude alone', undefined, 2],
  ])('%s: ignored, the postal code is used', (_name, latitude, longitude) => {
    const r = resolvePlace({ country: 'FR', postalCode: '69003', latitude, longitude });
    expect(r.precision).toBe('postal_code');
    expect(r.source).toMatch(/ignored: not a valid position/);
  });

  it('invalid coordinates and nothing else → not_found', () => {
    expect(resolvePlace({ country: 'FR', latitude: Number.NaN, longitude: 2 })).toMatchObject({ point: null, precision: 'not_found' });
  });
});

describe('resolvePlace never throws', () => {
  it.each<[string, unknown]>([
    ['null', null],
    ['undefined', undefined],
    ['a number as country', { country: 42 }],
    ['objects as fields', { country: 'FR', city: {}, postalCode: [], latitude: '45', longitude: {} }],
    ['a very long city', { country: 'FR', city: 'x'.repeat(100_000) }],
  ])('%s', (_name, input) => {
    const r = resolvePlace(input as Input);
    expect(r.precision).toBe('not_found');
    expect(r.point).toBeNull();
  });
});

describe('distanceKm', () => {
  it('Paris – Lyon is about 392 km', () => {
    expect(distanceKm(at(48.8566, 2.3522), at(45.764, 4.8357))).toBeCloseTo(392, -1);
  });
  it('is a float, not rounded', () => {
    const d = distanceKm(at(48.8566, 2.3522), at(48.8567, 2.3522)); // 0.0001° of latitude ≈ 11 m
    expect(d).toBeGreaterThan(0.011);
    expect(d).toBeLessThan(0.0112);
    expect(distanceKm(at(45, 5), at(45, 5))).toBe(0);
  });
});

describe('normaliseName', () => {
  it.each([
    ['Saint-Étienne', 'saint etienne'],
    ['ST ETIENNE', 'saint etienne'],
    ['  Ste  Marie ', 'sainte marie'],
    ['Paris Cedex 15', 'paris'],
    ["L'Haÿ-les-Roses", 'l hay les roses'],
    ['Œuilly', 'oeuilly'],
    ['København', 'kobenhavn'],
  ])('%s → %s', (raw, normalised) => expect(normaliseName(raw)).toBe(normalised));
});
