"""What the debcaps corpus is built from: pinned Debian packages and which of their files to take.

Each ``Source`` names a package at one version (and the sha256 of its .deb), a folder inside it,
which files to take (``include``/``exclude`` regular expressions on the path below that folder),
the licence of those files as the package's ``debian/copyright`` states it, and the credit.
Music tracks, speech and voice lines are excluded here by name; what remains is captioned in
``captions.csv`` by sound key (:func:`sound_key`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    deb_sha256: str
    root: str
    include: str
    exclude: str
    licence: str
    credit: str
    # A zip archive inside the package (``.wz``) whose members ``root`` is relative to.
    archive: str = ""
    # Files whose own debian/copyright stanza differs from ``licence``: (path regex, licence), first match wins.
    licence_exceptions: tuple[tuple[str, str], ...] = ()

    def licence_of(self, path: str) -> str:
        return next((licence for pattern, licence in self.licence_exceptions if re.search(pattern, path)), self.licence)


AUDIO = r"\.(wav|ogg|flac|mp3)$"

SOURCES: tuple[Source, ...] = (
    Source(
        "megaglest-data", "3.13.0-3", "ed4783d9fc78e201a548b266f7c30325eb16cfd58a20bf4597dd6e622f84a07e",
        "usr/share/games/megaglest",
        r"^(techs/megapack/(commondata|factions/[^/]+/units/[^/]+)/sounds/|tilesets/[^/]+/sounds/|data/core/water_sounds/)",
        r"(_ack|_sel|_select|/ack|/select|music|menu|aminos|asak|manolo|minarett|romans|good_morning|hell\.)",
        "CC-BY-SA-3.0",
        "MegaGlest data 3.13.0: the Glest Team, the MegaGlest Team, Titus and Philipp Tscharntke and others "
        "(see /usr/share/doc/megaglest-data/copyright)",
    ),
    Source(
        "qabcs-data", "1.0.2-6", "3484da4cf258e6f3a39a1fc99bbfcaddfd679cff96a8fa792f261ab0a2bf9d86",
        "usr/share/qabcs/abcs/all/noises",
        AUDIO,
        r"/?(ode|circus|quarter_note|sound|dunno|cheburashka|emelya|ivasyk|ole_lukoje|umka|yaga|x-men|ursula|joker|"
        r"prince|dogmatix|pupil|schooler|sailorboy|chef|gamekeeper|adjutant|clown|firebird|pishik|earth|star|"
        r"yinyang|xbox|display|quiz_game|igloo|hat|ear|paint|watercolor|easel|pen|necklace|anklet|quilt|"
        r"austrian_flag|estonian_flag|kinder_surprise_egg|origami|lunchbox|grommet|iotshin|ode)\.",
        "GPL-3+",
        "qABCs 1.0.2 noises, (c) the qABCs authors (see /usr/share/doc/qabcs-data/copyright)",
    ),
    Source(
        "tuxpaint-stamps-default", "2022.06.04-1", "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
        "usr/share/tuxpaint/stamps",
        r"\.(ogg|wav)$",
        r"(_desc|^symbols/|/(happy|sad|mad|excited|final-roll-call|santahat|gift|checkeredflag|no_uturn|xing_ped|"
        r"xing_school|dreydl-[a-z]+|hard_candy|apple_red|pig_golden|ghost|xanthia|lightningbolt)\.)",
        "GPL-2",
        "Tux Paint stamps 2022.06.04, (c) 2002-2022 Bill Kendrick and the Tux Paint contributors",
    ),
    Source(
        "wesnoth-1.16-data", "1:1.16.9-1", "1012b964bd412a6770685e3324ae3b61e176caff7846192d1ee63d55cd621e26",
        "usr/share/games/wesnoth/1.16/data/core/sounds",
        AUDIO,
        r"(fanfare|^select)",
        "GPL-2+",
        "Battle for Wesnoth 1.16.9, (c) David White and the Wesnoth contributors",
    ),
    Source(
        "hedgewars-data", "1.0.2-6", "722225903a72604403e6e0026e40e9a6953f47a74d94efc5f55504bc05bb4761",
        "usr/share/games/hedgewars/Data/Sounds",
        r"^[^/]+\.ogg$",
        r"^(\d[a-g]|ride_of_the_valkyries|hogchant\d*|yoohoo|hell_\w+|custom\d*|countdown\d*|suddendeath|homerun|"
        r"kiss|denied|skip|placed|extratime|switchhog|invulnerable|lowgravity|collectcrate|throwpowerup|"
        r"throwrelease|hellish|tardis|steps|lasersight|beep|cake\d*)\.",
        "GFDL-1.3",
        "Hedgewars 1.0.2 sounds, (c) 2004-2006 Andrey Korotaev and the Hedgewars contributors",
    ),
    Source(
        "lincity-ng-data", "2.9~git20150314-5", "8f5e85bd42879abdc7099b035d7a3d7468eceb6b93b52a12270c28f3f3c792f9",
        "usr/share/games/lincity-ng/sounds",
        AUDIO,
        r"^(click|windowopen|windowclose|build|raze|substationon|substationoff)",
        "GPL-2+",
        "LinCity-NG 2.9 sounds, (c) the LinCity-NG contributors (GPL-2+ / CC BY-SA 2.0 dual licence; used under GPL)",
    ),
    Source(
        "minetest-data", "5.6.1+dfsg+~1.9.0mt8+dfsg-2", "91371dd2bd51cfcd4fa60c138667989a47047dfe1a47f7523b9ad1782d397585",
        "usr/share/games/minetest/games/minetest_game/mods",
        AUDIO,
        r"(player_damage|default_dug_node|default_place_node|default_item_smoke)",
        "CC-BY-SA-3.0",
        "Minetest Game 5.6.1 sounds, by their authors named in /usr/share/doc/minetest-data/copyright",
        licence_exceptions=(
            (r"^doors/sounds/doors_glass_door_(open|close)\.ogg$", "CC0-1.0"),
            (r"^tnt/sounds/", "CC0-1.0"),
            (r"^doors/sounds/", "CC-BY-3.0"),
        ),
    ),
    Source(
        "scorched3d-data", "44+dfsg-8", "b0be0a6d561966a62b1f135e0e6f5681c85f12e34ecad5777cb1af9fbcb7f1da",
        "usr/share/games/scorched3d/data/globalmods",
        AUDIO,
        r"/(text|play|turn|fight4life|extralife|t|mix3_loop\d*|activate\d*|activateforce|activmag|beamup|"
        r"elevate|power|para|movement|lockon|empsmall|riftcollapse|radiation|battery|beep\d*)\.",
        "GPL-2+",
        "Scorched3D 44, (c) 2001-2014 Gavin Camp and contributors; the apoc mod by the Apocalypse mod team",
        licence_exceptions=((r"^apoc/", "CC-BY-SA-3.0"),),
    ),
    Source(
        "triplea", "1.9.0.0.7062-2", "f43196c458195a7a99afdc7966269039ce31837df7a8d9693e2b0bab9245720e",
        "usr/share/games/triplea/assets/sounds",
        AUDIO,
        r"(Anthem|overture|lotr|gladiator|epic|battlemarch|classic_music|la_reine|fanfare|sad_trumpet|buildup|"
        r"warhorn|eerie|colosseum|robot_chatter|click_button|click_plot|chat_message\.|game_won_01_appear|"
        r"2608_cut|drums_with_waves|appear)",
        "GPL-2+",
        "TripleA 1.9 sounds, (c) 2002-2011 Sean Bridges and the TripleA contributors",
    ),
    Source(
        "flare-game", "1.14-1", "4ab6a8298276013d35a0806257e130d992761af1b749041433b409c3dafec508",
        "usr/share/games/flare/mods",
        r"soundfx/.*\.(ogg|wav)$",
        r"(npcs/|level_up|no_mana|flying_loot|warcry|timestop)",
        "CC-BY-SA-3.0",
        "Flare 1.14 game data, (c) Clint Bellanger and the Flare contributors",
    ),
    Source(
        "freedroidrpg-data", "1.0-1", "16c3cfeb82b1ec20c98493bbe1de2e356bd1aec832845630a5a7f12e303baa2b",
        "usr/share/freedroidrpg/data/sound/effects",
        AUDIO,
        r"(voice_samples|tux_ingame_comments|First_Contact|Start_Attack|Menu|Takeover|ThouArt|Mission|Shop_|"
        r"Influencer_Scream|No_Ammo|Item_Drop_Sound_[34]|read_sign|LeaveElevator)",
        "GPL-2+",
        "FreedroidRPG 1.0, (c) the FreedroidRPG team",
    ),
    Source(
        "bzflag-data", "2.4.26-1", "a49ccdea8a747195503798fbbc332beece9861d7c1cce1329e01d9448eec3699",
        "usr/share/games/bzflag",
        AUDIO,
        r"(message_|flag_|spree|killteam|hunt|teamgrab|lock|thief|phantom|land|pop|flap|burrow)",
        "LGPL-2.1 OR MPL-1.1",
        "BZFlag 2.4.26, (c) Tim Riker and the BZFlag contributors",
    ),
    Source(
        "sonic-pi-samples", "3.2.2~repack-8", "25f2312d2fae005e6ad0f4726b8ed3084e776006a5a132083506e960224ac79d",
        "usr/share/sonic-pi/samples",
        r"^(ambi_(dark_woosh|glass_hum|glass_rub|lunar_land|soft_buzz|swoosh|sauna)|misc_(burp|cineboom|crow)|"
        r"perc_|vinyl_|loop_(3d_printer|industrial|safari)|drum_(cowbell|roll|snare_hard|cymbal_open|heavy_kick|"
        r"tom_mid_hard|splash_hard)|elec_(beep|bell|chime|ping|tick|triangle|wood)|guit_(e_slide|harmonics)|"
        r"tabla_na\.|mehackit_phone1)",
        "",
        "CC0-1.0",
        "Sonic Pi 3.2.2 samples: from freesound.org (CC0) or (c) 2016 Samuel Aaron (MIT), per "
        "/usr/share/doc/sonic-pi-samples/copyright",
        # Not in the copyright file's per-sample CC0 stanzas, so under its "Files: *" (MIT).
        licence_exceptions=((r"^(mehackit_phone1|ambi_sauna|loop_3d_printer|perc_bell2|perc_door|perc_impact[12])\.flac$", "MIT"),),
    ),
    Source(
        "lmms-common", "1.2.2+dfsg1-6", "7d9aa55dd05f11edc57104203ee1c350e3e41f8936ab3741da2bb1158fd46c37",
        "usr/share/lmms/samples",
        r"^(misc/(applause|breath|metronome|raving_crowd|snaph|dong)|effects/(explode|warp|start|stop)|"
        r"drums/(bassdrum_acoustic01|clap01|crash01|hihat_opened01|ride01|shaker01|snare_acoustic01|tom_low01|sidestick01|wood01))",
        "",
        "GPL-2+",
        "LMMS 1.2.2 samples, (c) the LMMS developers",
    ),
    Source(
        "widelands-data", "2:1.1-3", "0e23d645b15bcfb9e3bcae0de9bc1bdfa75a6ecb36b2e449759d6eb0b4bbd8fb",
        "usr/share/games/widelands/data",
        r"^(sound|world/critters)/.*\.ogg$",
        r"(/music/|/(click|lobby_\w+|message|under_attack|site_occupied|create_construction_site|goldping|ironping|"
        r"fizzle|ration|meal|falling_tools)[_\d]*\.ogg$)",
        "GPL-2+",
        "Widelands 1.1, (c) the Widelands Development Team",
    ),
    Source(
        "warzone2100-data", "4.3.3-3", "53ad292569e0bf9d16de1642d13629f29ed5dfb68896787e4c65ac60edc07d3d",
        "audio/sfx",
        AUDIO,
        r"/(beep\d|silence|help|scream\d?|build\d|bldstart|bldloop|con-move-off|gmeshtdn)\.",
        "GPL-2+",
        "Warzone 2100 4.3.3 data, (c) Eidos Interactive and the Warzone 2100 Project",
        archive="usr/share/games/warzone2100/base.wz",
    ),
)


def sound_key(relpath: str) -> str:
    """The name one sound goes by: the file name without extension, numbering and case.

    ``swordman_attack3.wav`` in two factions and ``default_snow_footstep.2.ogg`` both key to the
    sound they are a take of, so takes and copies share one caption.
    """
    stem = relpath.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    bare = re.sub(r"[-_. ]*\d+[a-z]?$", "", stem)
    return bare if len(bare) >= 3 else stem
