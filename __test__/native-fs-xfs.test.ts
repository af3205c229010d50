// The native primitives on xfs (see helpers/native-fs-suite.ts).
import { nativeFsSuite } from './helpers/native-fs-suite'

nativeFsSuite('xfs')
