// Input checks shared by the inventory use cases: they throw AppError with a catalogue code.
import countries from 'i18n-iso-countries';
import { AppError } from '../shared/errors.ts';
import { COUNTRY_RE, isValidGtin } from './model.ts';

export function assertCountry(country: string): void {
  if (!COUNTRY_RE.test(country.toUpperCase()) || !countries.isValid(country.toUpperCase())) {
    throw new AppError('invalid_country', `'${country}' is not an ISO 3166-1 alpha-2 country code`);
  }
}

export function assertGtin(gtin: string): void {
  if (!isValidGtin(gtin)) {
    throw new AppError('invalid_gtin', `GTIN '${gtin}' is invalid: it needs 8, 12, 13 or 14 digits and a correct check digit`);
  }
}
