// Sortable ids (ULID) for records created by the OMS.
import { monotonicFactory } from 'ulid';

const next = monotonicFactory();
export const newId = (prefix: string): string => `${prefix}_${next()}`;
