// Send and receive on btrfs: see helpers/send-suite.ts.
import test from 'ava'
import { sendSuite } from './helpers/send-suite'

sendSuite(test, 'btrfs')
