// Card numbers must never enter the OMS (PCI DSS scope). Free text (notes, names, addresses,
// references) is checked for anything that looks like a primary account number: 13 to 19
// digits, possibly grouped by spaces or dashes, that passes the Luhn check.

/** The Luhn (mod 10) check over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

// Runs of digits with single spaces or dashes between them (how people type card numbers).
const DIGIT_RUN = /\d(?:[ -]?\d){12,}/g;

/** True when the text holds a Luhn-valid run of 13–19 digits (separators ignored). */
export function containsCardNumber(text: string): boolean {
  if (text.length < 13) return false;
  for (const m of text.matchAll(DIGIT_RUN)) {
    const digits = m[0].replace(/[ -]/g, '');
    // Longer runs (barcodes glued together, serials) are not card numbers a person typed.
    if (digits.length <= 19 && luhnValid(digits)) return true;
  }
  return false;
}
