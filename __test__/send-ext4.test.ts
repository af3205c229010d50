// Send and receive on ext4: see helpers/send-suite.ts.
import test from 'ava'
import { sendSuite } from './helpers/send-suite'

sendSuite(test, 'ext4')
