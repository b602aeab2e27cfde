// Where the meaning of an OpenStack failure depends on the call (a 400 on a
// create is a bad parameter, on a delete a dependent snapshot), operations
// translate the kinds that matter here; every other error goes on to the
// pipeline's one mapping.
import { CsiError } from '../csi/errors';
import { isOpenStackError, type OpenStackErrorKind } from '../openstack/errors';

export type Translations = Partial<Record<OpenStackErrorKind, (cinderMessage: string) => CsiError>>;

export function translate(err: unknown, translations: Translations): unknown {
  if (isOpenStackError(err)) {
    const make = translations[err.kind];
    if (make) {
      const translated = make(err.message);
      translated.cause = err;
      return translated;
    }
  }
  return err;
}

/** For `.catch(rethrow({...}))`. */
export function rethrow(translations: Translations): (err: unknown) => never {
  return (err) => {
    throw translate(err, translations);
  };
}
