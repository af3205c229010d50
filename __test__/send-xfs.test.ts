// Send and receive on xfs: see helpers/send-suite.ts.
import test from 'ava'
import { sendSuite } from './helpers/send-suite'

sendSuite(test, 'xfs')
