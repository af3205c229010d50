// The native primitives on btrfs (see helpers/native-fs-suite.ts).
import { nativeFsSuite } from './helpers/native-fs-suite'

nativeFsSuite('btrfs')
