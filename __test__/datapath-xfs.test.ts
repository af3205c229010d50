// Data in and out of volumes on xfs: see helpers/datapath-suite.ts.
import test from 'ava'
import { datapathSuite } from './helpers/datapath-suite'

datapathSuite(test, 'xfs')
