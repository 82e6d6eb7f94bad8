/**
 * Version of the fingerprint recipe; bumping it makes every stage run once more.
 *
 * Its own module (re-exported by stage.ts) so that the no-op `status` fast path can name it
 * without loading the native BLAKE3 binding that stage.ts needs.
 */
export const FINGERPRINT_VERSION = 1;
