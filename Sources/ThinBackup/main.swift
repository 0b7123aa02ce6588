import ThinBackupKit
#if canImport(Glibc)
import Glibc
#endif

exit(ThinBackupMain.run())
