// The native primitives on ext4 (see helpers/native-fs-suite.ts).
import { nativeFsSuite } from './helpers/native-fs-suite'

nativeFsSuite('ext4')
