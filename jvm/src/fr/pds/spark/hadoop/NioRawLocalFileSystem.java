package fr.pds.spark.hadoop;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;

import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsAction;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's raw local file system, with its two shell calls done in Java instead.
 *
 * <p>Without Hadoop's native library, {@link RawLocalFileSystem} starts a {@code chmod}
 * process for every file or folder it creates, and a {@code readlink} process for every
 * link lookup (each rename through a {@code FileContext}: four a Delta commit). That is
 * about 45 processes, 0.1 s, per table loaded. Here both are {@code java.nio} calls with
 * the same meaning; everything else is Hadoop's own code.
 */
public class NioRawLocalFileSystem extends RawLocalFileSystem {

  static Set<PosixFilePermission> posix(FsPermission permission) {
    Set<PosixFilePermission> out = EnumSet.noneOf(PosixFilePermission.class);
    PosixFilePermission[][] bits = {
        {PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE},
        {PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_EXECUTE},
        {PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE}};
    FsAction[] actions = {permission.getUserAction(), permission.getGroupAction(), permission.getOtherAction()};
    for (int who = 0; who < 3; who++) {
      if (actions[who].implies(FsAction.READ)) out.add(bits[who][0]);
      if (actions[who].implies(FsAction.WRITE)) out.add(bits[who][1]);
      if (actions[who].implies(FsAction.EXECUTE)) out.add(bits[who][2]);
    }
    return out;
  }

  /** chmod without a process; the sticky bit (never set by Spark or Delta) goes to Hadoop's own call. */
  @Override
  public void setPermission(Path p, FsPermission permission) throws IOException {
    if (permission.getStickyBit()) {
      super.setPermission(p, permission);
      return;
    }
    try {
      Files.setPosixFilePermissions(pathToFile(p).toPath(), posix(permission));
    } catch (UnsupportedOperationException notPosix) {
      super.setPermission(p, permission);
    } catch (NoSuchFileException missing) {
      throw new FileNotFoundException("File " + p + " does not exist");
    }
  }

  /** A path that is not a link is described as getFileStatus does, without asking readlink. */
  @Override
  public FileStatus getFileLinkStatus(Path f) throws IOException {
    BasicFileAttributes attributes;
    try {
      attributes = Files.readAttributes(pathToFile(f).toPath(), BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    } catch (NoSuchFileException missing) {
      throw new FileNotFoundException("File " + f + " does not exist");
    }
    return attributes.isSymbolicLink() ? super.getFileLinkStatus(f) : getFileStatus(f);
  }
}
